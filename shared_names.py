"""Names of orchestrations, activities, entities and events that cross a function boundary.

A name is written once here and imported by both sides (the caller and the registration), so a
rename cannot leave a caller pointing at a function that no longer exists.
"""

from __future__ import annotations

from typing import Final

# Orchestrations
DOCUMENT_DIGEST: Final = "document_digest"

# Activities
SPLIT_SENTENCES: Final = "split_sentences"
SCORE_SENTENCES: Final = "score_sentences"
COMPOSE_DIGEST: Final = "compose_digest"

# Agent runs and sessions (issue: durable agents)
AGENT_RUN: Final = "agent_run"
SESSION_LOOP: Final = "session_loop"
CALL_MODEL: Final = "call_model"
RUN_TOOL: Final = "run_tool"
RUN_LOG_ENTITY: Final = "run_log"
SESSION_ENTITY: Final = "session"

# External events of an agent run and of a session loop
STEER_EVENT: Final = "steer"
CANCEL_EVENT: Final = "cancel"
APPROVAL_EVENT: Final = "approval"
SESSION_MESSAGE_EVENT: Final = "session_message"

# Research and review workflows, and the usage entity every workflow reports to (issue: agent workflows)
RESEARCH_WORKFLOW: Final = "research_workflow"
REVIEW_WORKFLOW: Final = "review_workflow"
USAGE_ENTITY: Final = "usage"

# Publish, watch and digest workflows (issue: agent workflows)
PUBLISH_WORKFLOW: Final = "publish_workflow"
WATCH_WORKFLOW: Final = "watch_workflow"
DIGEST_WORKFLOW: Final = "digest_workflow"
POST_TO_OUTBOX: Final = "post_to_outbox"
SEARCH_KNOWLEDGE_BASE: Final = "search_knowledge_base"
DECISION_EVENT: Final = "decision"
STOP_EVENT: Final = "stop"

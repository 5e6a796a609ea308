"""Composition root of the durable-agents Function App.

Only builds the app and registers each module's Blueprint; the functions live in starters/,
orchestrators/, activities/ and entities/. Importing this module does no I/O.
"""

import azure.durable_functions as df
import azure.functions as func

from activities import agent_steps, text, workflow_io
from entities import run_log, session, usage
from orchestrators import (
    agent_run,
    digest_workflow,
    document_digest,
    publish_workflow,
    research_workflow,
    review_workflow,
    session_loop,
    watch_workflow,
)
from starters import agents_api, documents, runs_api, sessions_api, workflow_controls_api, workflows_api

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(documents.bp)
app.register_functions(document_digest.bp)
app.register_functions(text.bp)
app.register_functions(agent_run.bp)
app.register_functions(agent_steps.bp)
app.register_functions(run_log.bp)
app.register_functions(agents_api.bp)
app.register_functions(runs_api.bp)
app.register_functions(session.bp)
app.register_functions(session_loop.bp)
app.register_functions(sessions_api.bp)
app.register_functions(workflow_io.bp)
app.register_functions(publish_workflow.bp)
app.register_functions(watch_workflow.bp)
app.register_functions(digest_workflow.bp)
app.register_functions(workflow_controls_api.bp)
app.register_functions(usage.bp)
app.register_functions(research_workflow.bp)
app.register_functions(review_workflow.bp)
app.register_functions(workflows_api.bp)

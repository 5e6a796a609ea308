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

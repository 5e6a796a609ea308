"""Function App of the orchestration versioning tests (tests/integration/test_versioning.py).

Composition root only: the SDK starters and the orchestrators live in blueprints. Its host.json sets
defaultVersion 1.0; tests that need other versioning settings run a copy with another host.json.
"""

import azure.durable_functions as df
import azure.functions as func
import version_starters
import versioned_orchestrators

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(version_starters.bp)
app.register_functions(versioned_orchestrators.bp)

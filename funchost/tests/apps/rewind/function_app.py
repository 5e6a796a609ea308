"""Function App of the rewind tests (tests/integration/test_rewind.py).

Composition root only: the SDK starters, orchestrators and activities live in blueprints.
"""

import azure.durable_functions as df
import azure.functions as func
import rewind_activities
import rewind_client
import rewind_workflows

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(rewind_client.bp)
app.register_functions(rewind_workflows.bp)
app.register_functions(rewind_activities.bp)

"""Function App of the Durable engine and management API tests.

Used by tests/integration/test_orchestration*.py and test_management_api*.py.

Composition root only: the HTTP starters, orchestrators and activities live in blueprints.
"""

import azure.durable_functions as df
import azure.functions as func
import client_routes
import workflow_activities
import workflows

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(client_routes.bp)
app.register_functions(workflows.bp)
app.register_functions(workflow_activities.bp)

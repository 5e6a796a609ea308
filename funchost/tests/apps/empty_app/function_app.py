"""An app that registers no functions, for tests/integration/test_cli.py: the host must refuse to start."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

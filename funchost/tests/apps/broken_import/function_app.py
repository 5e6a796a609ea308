"""An app whose import fails, for tests/integration/test_cli.py: the host must say so briefly and exit."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _load_required_setting() -> str:
    raise RuntimeError("broken_import fixture: required setting BROKEN_IMPORT_SETTING is missing")


# Deliberately at import time, a few calls deep, so a naive host would print a long traceback.
REQUIRED_SETTING = _load_required_setting()


@app.route(route="never", methods=["GET"])
def never(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("unreachable")

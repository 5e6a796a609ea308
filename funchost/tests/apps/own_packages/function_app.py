"""An app with a package of its own called `agents` and a dependency in .python_packages, for
test_import_isolation.py: `GET /api/imports` says which modules the app got."""

import importlib.util
import json
import sys

import agents
import azure.functions as func
import vendored_helper

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# Top-level names a checkout that funchost is started from may hold; none of them is this app's.
FOREIGN = ("orchestrators", "starters", "activities", "entities", "shared_names")


@app.route(route="imports", methods=["GET"])
def imports(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({
        "agents": agents.ORIGIN,
        "vendored_helper": vendored_helper.ORIGIN,
        "sys_path_head": sys.path[:2],
        "foreign_importable": [name for name in FOREIGN if importlib.util.find_spec(name) is not None],
    }), mimetype="application/json")

"""An app the Python worker refuses on Python 3.11+, for tests/integration/test_cli.py: funchost must too.

`count_words` annotates its activity input with a PEP 585 generic, which the worker takes for a non-type
annotation from Python 3.11 on; that one function fails the indexing of the whole app, so `ping` does
not run either.
"""

# No `from __future__ import annotations`: the worker reads these annotations as objects.

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="ping", methods=["GET"])
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")


@app.activity_trigger(input_name="lines")
def count_words(lines: list[str]) -> int:
    return sum(len(line.split()) for line in lines)

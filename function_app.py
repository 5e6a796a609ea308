"""Composition root of the durable-agents Function App.

Only builds the app and registers each module's Blueprint; the functions live in starters/,
orchestrators/, activities/ and entities/. Importing this module does no I/O.
"""

import azure.durable_functions as df
import azure.functions as func

from activities import agent_steps, text
from entities import run_log, session
from orchestrators import agent_run, document_digest, session_loop
from starters import agents_api, documents, runs_api, sessions_api

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

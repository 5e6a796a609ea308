"""Fixtures of the Function App's tests: funchost's pytest plugin (``start_host`` once per task hub store)
is loaded by pyproject.toml's ``-p funchost.testing.pytest_plugin``; app folders are given as paths."""

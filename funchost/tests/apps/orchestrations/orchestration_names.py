"""Names that cross a boundary in the orchestrations test app: external events and settings.

The integration tests under tests/integration/ use the same literal strings; keeping them here
means the app's modules agree with one another.
"""

APPROVAL_EVENT = "approval"
ADD_EVENT = "add"
PROCEED_EVENT = "proceed"

# Read by `switch_step_two` on every replay, so a host restarted with another value replays the
# same history with different code: the non-determinism test relies on that.
STEP_TWO_SETTING = "ORCHESTRATIONS_APP_STEP_TWO"
DEFAULT_STEP_TWO = "record_route_a"

WAITING_STATUS = {"stage": "waiting for approval"}

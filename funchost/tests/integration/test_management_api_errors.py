"""Bad input to every route of funchost's Durable management API answers a clear 4xx JSON.

Unknown instances (404), malformed filters (400), bodies that are not JSON (400), operations on
finished instances (410), unknown routes (404) and wrong methods (405): never a 500, never plain
text, always a message. Each test gathers every bad answer before failing, so one run shows all
of them; and each checks that the refused request changed nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from tests.integration._durable_helpers import (
    APP,
    DURABLE,
    WAITING_STATUS,
    assert_json_error,
    finished,
    json_error_problem,
    raise_public,
    start,
    wait_until_waiting,
)

Case = tuple[str, str, Any]  # method, path, JSON body (None: no body)


@pytest.fixture
def host(start_host: StartHost) -> FunchostProcess:
    return start_host(APP)


def problems(host: FunchostProcess, cases: list[Case], status: int) -> list[str]:
    found = []
    for method, path, body in cases:
        problem = json_error_problem(host.request(method, path, body), status)
        if problem:
            found.append(f"{method} {path}: {problem}")
    return found


def test_unknown_instance_is_404_json_on_every_instance_route(host: FunchostProcess) -> None:
    base = f"{DURABLE}/instances/no-such-instance"
    cases: list[Case] = [
        ("GET", base, None),
        ("GET", f"{base}?showHistory=true&showHistoryOutput=true&showInput=true", None),
        ("POST", f"{base}/raiseEvent/approval", {"a": 1}),
        ("POST", f"{base}/terminate?reason=x", None),
        ("POST", f"{base}/suspend?reason=x", None),
        ("POST", f"{base}/resume?reason=x", None),
        ("POST", f"{base}/restart", None),
        ("POST", f"{base}/restart?restartWithNewInstanceId=true", None),
        ("POST", f"{base}/rewind?reason=x", None),
        ("DELETE", base, None),
        ("GET", f"{DURABLE}/entities/nope_entity/k1", None),
    ]

    assert problems(host, cases, 404) == []


def test_unknown_instance_through_the_sdk_client_raises_its_messages(host: FunchostProcess) -> None:
    # The SDK words 404s itself; these only come out if funchost answered 404 where the SDK expects it.
    client = "/api/client/instances/no-such-instance"

    raised = host.post(f"{client}/events/approval", {"a": 1})
    terminated = host.post(f"{client}/terminate?reason=x")
    suspended = host.post(f"{client}/suspend?reason=x")
    resumed = host.post(f"{client}/resume?reason=x")
    restarted = host.post(f"{client}/restart?new_id=true")
    purged = host.delete(client)

    assert "No instance with ID no-such-instance found." in assert_json_error(raised, 400)
    for res in (terminated, suspended, resumed, restarted):
        assert "No instance with ID 'no-such-instance' found." in assert_json_error(res, 400)
    assert (purged.status, purged.json()) == (200, {"instancesDeleted": 0})


def test_malformed_filters_are_400_json_and_purge_nothing(host: FunchostProcess) -> None:
    kept = start(host, "echo_input", "keep me")
    finished(host, kept)
    instances = f"{DURABLE}/instances"
    cases: list[Case] = [
        ("GET", f"{instances}?runtimeStatus=Bogus", None),
        ("GET", f"{instances}?runtimeStatus=Running,Bogus", None),
        ("GET", f"{instances}?createdTimeFrom=yesterday", None),
        ("GET", f"{instances}?createdTimeTo=2024-13-45T99:00:00Z", None),
        ("GET", f"{instances}?top=abc", None),
        ("GET", f"{instances}/?top=1.5", None),
        ("DELETE", f"{instances}?createdTimeFrom=not-a-date", None),
        ("DELETE", f"{instances}?createdTimeFrom=2000-01-01T00:00:00Z&createdTimeTo=nope", None),
        ("DELETE", f"{instances}?createdTimeFrom=2000-01-01T00:00:00Z&runtimeStatus=Bogus", None),
        ("GET", f"{DURABLE}/entities/nope_entity?top=abc", None),
    ]

    assert problems(host, cases, 400) == []
    status = host.status(kept)
    assert (status.status, status.json()["output"]) == (200, "keep me")


def test_bad_entity_requests_are_4xx_json(host: FunchostProcess) -> None:
    entities = f"{DURABLE}/entities"

    unknown_entity = host.post(f"{entities}/nope_entity/k1?op=add", 1)
    no_operation = host.post(f"{entities}/nope_entity/k1")
    bad_body = host.post(
        f"{entities}/nope_entity/k1?op=add", raw=b"{not json", headers={"Content-Type": "application/json"}
    )
    wrong_method = host.delete(f"{entities}/nope_entity/k1")

    assert "nope_entity" in assert_json_error(unknown_entity, 400)
    assert_json_error(no_operation, 400)
    assert_json_error(bad_body, 400)
    assert_json_error(wrong_method, 405)
    assert host.get(f"{entities}/nope_entity").json() == []


def test_bodies_that_are_not_json_are_400_and_deliver_nothing(host: FunchostProcess) -> None:
    instance_id = start(host, "wait_for_approval")
    wait_until_waiting(host, instance_id)
    raise_url = f"{DURABLE}/instances/{instance_id}/raiseEvent/approval"

    broken_json = host.post(raise_url, raw=b"{not json", headers={"Content-Type": "application/json"})
    plain_text = host.post(raise_url, raw=b"plain words", headers={"Content-Type": "text/plain"})
    bad_start = host.post(
        f"{DURABLE}/orchestrators/echo_input/bad-body", raw=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert_json_error(broken_json, 400)
    assert_json_error(plain_text, 400)
    assert_json_error(bad_start, 400)
    assert_json_error(host.post(f"{DURABLE}/orchestrators/echo_input/a%2Fb", "x"), 400)  # '/' in an id
    assert host.status("bad-body").status == 404
    still = host.status(instance_id).json()
    assert (still["runtimeStatus"], still["customStatus"]) == ("Running", WAITING_STATUS)
    assert raise_public(host, instance_id, "approval", {"good": True}).status == 202
    assert finished(host, instance_id)["output"] == {"good": True}


def test_operations_on_a_finished_instance_are_410_json(host: FunchostProcess) -> None:
    instance_id = start(host, "run_chain", "Kyiv")
    finished(host, instance_id)
    base = f"{DURABLE}/instances/{instance_id}"
    cases: list[Case] = [
        ("POST", f"{base}/terminate?reason=late", None),
        ("POST", f"{base}/suspend?reason=late", None),
        ("POST", f"{base}/resume?reason=late", None),
        ("POST", f"{base}/raiseEvent/approval", {"late": True}),
    ]

    assert problems(host, cases, 410) == []
    status = host.status(instance_id).json()
    assert (status["runtimeStatus"], status["output"]) == ("Completed", "Hello Hello Hello Kyiv")


def test_unknown_routes_are_404_json_and_wrong_methods_405_json(host: FunchostProcess) -> None:
    instance_id = start(host, "run_chain", "Quito")
    finished(host, instance_id)
    base = f"{DURABLE}/instances/{instance_id}"
    unknown: list[Case] = [
        ("GET", f"{DURABLE}/bogus", None),
        ("POST", f"{DURABLE}/bogus/route", {"a": 1}),
        ("GET", f"{base}/bogus", None),
        ("POST", f"{base}/raiseEvent", {"a": 1}),
        ("POST", f"{base}/explode?reason=x", None),
    ]
    wrong_method: list[Case] = [
        ("DELETE", f"{DURABLE}/orchestrators/echo_input", None),
        ("GET", f"{DURABLE}/orchestrators/echo_input", None),
        ("PUT", base, {"a": 1}),
        ("PATCH", f"{DURABLE}/instances", {"a": 1}),
        ("GET", f"{base}/terminate", None),
        ("DELETE", f"{base}/suspend", None),
        ("GET", f"{base}/raiseEvent/approval", None),
    ]

    assert problems(host, unknown, 404) + problems(host, wrong_method, 405) == []
    assert host.status(instance_id).json()["runtimeStatus"] == "Completed"

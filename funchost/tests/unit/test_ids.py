"""The one check of which instance and entity ids a task hub can hold (the API and orchestrations use it)."""

from __future__ import annotations

import pytest

from funchost.durable.ids import entity_id_problem, instance_id_problem


@pytest.mark.parametrize("instance_id", ["a", "x" * 256, "run-1:2.3_4", "...", "café", "a b", "a@b"])
def test_ids_a_task_hub_holds_pass(instance_id: str) -> None:
    assert instance_id_problem(instance_id) is None


@pytest.mark.parametrize(("instance_id", "says"), [
    ("", "between 1 and 256"), ("x" * 257, "between 1 and 256"), ("@a@b", "must not start with '@'"),
    (".", "'.' and '..'"), ("..", "'.' and '..'"), ("a/b", "cannot store"), ("a\\b", "cannot store"),
    ("a#b", "cannot store"), ("a?b", "cannot store"), ("a\nb", "cannot store"), ("a\x85b", "cannot store"),
])
def test_ids_a_task_hub_cannot_hold_say_why(instance_id: str, says: str) -> None:
    problem = instance_id_problem(instance_id)
    assert problem is not None and says in problem


@pytest.mark.parametrize(("name", "key", "says"), [
    ("", "k", "must not be empty"), ("counter", "", "must not be empty"), ("a@b", "k", "must not contain '@'"),
    ("counter", "a/b", "cannot store"), ("counter", "..", "'.' and '..'"), ("counter", "k" * 300, "at most 256"),
])
def test_entity_ids_a_task_hub_cannot_hold_say_why(name: str, key: str, says: str) -> None:
    problem = entity_id_problem(name, key)
    assert problem is not None and says in problem
    assert entity_id_problem("counter", "k1") is None

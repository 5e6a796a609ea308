"""host.json and local.settings.json are read as the Functions host reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funchost.config import (
    OverridableStates,
    VersionFailureStrategy,
    VersionMatchStrategy,
    load_host_config,
    load_local_settings,
)
from funchost.errors import ConfigError


def write(path: Path, value: object) -> None:
    path.write_text(json.dumps(value) if not isinstance(value, str) else value)


def test_missing_host_json_means_defaults(tmp_path: Path) -> None:
    config = load_host_config(tmp_path)
    assert config.route_prefix == "api"
    assert config.durable.hub_name == "TestHubName"


def test_host_json_settings(tmp_path: Path) -> None:
    write(tmp_path / "host.json", {"version": "2.0", "extensions": {
        "http": {"routePrefix": "/v1/"},
        "durableTask": {"hubName": "Agents", "maxConcurrentActivityFunctions": 3,
                        "maxEntityOperationBatchSize": 7, "storageProvider": {"partitionCount": 2}}}})
    config = load_host_config(tmp_path)
    assert config.route_prefix == "v1"
    assert config.durable.hub_name == "Agents"
    assert config.durable.max_concurrent_activities == 3
    assert config.durable.max_entity_batch_size == 7
    assert config.durable.partition_count == 2


def test_hub_name_from_app_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_HUB", "FromSetting")
    write(tmp_path / "host.json", {"extensions": {"durableTask": {"hubName": "%MY_HUB%"}}})
    assert load_host_config(tmp_path).durable.hub_name == "FromSetting"


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "not valid JSON"),
    ({"extensions": {"durableTask": {"maxConcurrentActivityFunctions": 0}}}, "maxConcurrentActivityFunctions"),
    ({"extensions": {"durableTask": {"hubName": ""}}}, "hubName"),
    ({"extensions": {"durableTask": {"hubName": "%UNSET_SETTING_X%"}}}, "UNSET_SETTING_X"),
])
def test_bad_host_json_is_a_clear_error(tmp_path: Path, content: object, fragment: str) -> None:
    write(tmp_path / "host.json", content)
    with pytest.raises(ConfigError, match=fragment):
        load_host_config(tmp_path)


def test_local_settings_values_do_not_override_the_environment(tmp_path: Path) -> None:
    write(tmp_path / "local.settings.json", {"IsEncrypted": False, "Values": {"A": "from-file", "B": "from-file",
                                                                            "FLAG": True}})
    env = {"A": "from-env"}
    applied = load_local_settings(tmp_path, env)
    assert env == {"A": "from-env", "B": "from-file", "FLAG": "true"}
    assert applied == {"B": "from-file", "FLAG": "true"}


def test_queue_visibility_timeout_is_a_timespan(tmp_path: Path) -> None:
    assert load_host_config(tmp_path).durable.visibility_timeout_s == 10
    write(tmp_path / "host.json", {"extensions": {"durableTask": {"storageProvider": {
        "controlQueueVisibilityTimeout": "1.00:02:05"}}}})
    assert load_host_config(tmp_path).durable.visibility_timeout_s == 86_525
    write(tmp_path / "host.json", {"extensions": {"durableTask": {"storageProvider": {
        "controlQueueVisibilityTimeout": "30 seconds"}}}})
    with pytest.raises(ConfigError, match="controlQueueVisibilityTimeout"):
        load_host_config(tmp_path)


def test_versioning_defaults_are_the_extensions(tmp_path: Path) -> None:
    durable = load_host_config(tmp_path).durable
    assert durable.default_version is None
    assert durable.version_match_strategy is VersionMatchStrategy.CURRENT_OR_OLDER
    assert durable.version_failure_strategy is VersionFailureStrategy.REJECT


@pytest.mark.parametrize("settings, expected", [
    ({"defaultVersion": "2.0", "versionMatchStrategy": "Strict", "versionFailureStrategy": "Fail"},
     ("2.0", VersionMatchStrategy.STRICT, VersionFailureStrategy.FAIL)),
    # Enum names in any case, blanks around them ignored; or the enum's number (Enum.Parse with ignoreCase).
    ({"defaultVersion": "", "versionMatchStrategy": " currentorolder ", "versionFailureStrategy": "REJECT"},
     ("", VersionMatchStrategy.CURRENT_OR_OLDER, VersionFailureStrategy.REJECT)),
    ({"defaultVersion": None, "versionMatchStrategy": 0, "versionFailureStrategy": "1"},
     (None, VersionMatchStrategy.NONE, VersionFailureStrategy.FAIL)),
    ({"versionMatchStrategy": "none"}, (None, VersionMatchStrategy.NONE, VersionFailureStrategy.REJECT)),
])
def test_versioning_settings(tmp_path: Path, settings: dict[str, object], expected: tuple[object, ...]) -> None:
    write(tmp_path / "host.json", {"extensions": {"durableTask": settings}})
    durable = load_host_config(tmp_path).durable
    assert (durable.default_version, durable.version_match_strategy, durable.version_failure_strategy) == expected


@pytest.mark.parametrize("settings, message", [
    ({"versionMatchStrategy": "Latest"},
     "extensions.durableTask.versionMatchStrategy must be one of None, Strict, CurrentOrOlder, not \"Latest\""),
    ({"versionMatchStrategy": "Strict, CurrentOrOlder"}, "versionMatchStrategy must be one of"),
    ({"versionMatchStrategy": 3}, "versionMatchStrategy must be one of None, Strict, CurrentOrOlder, not 3"),
    ({"versionMatchStrategy": True}, "versionMatchStrategy must be one of"),
    ({"versionFailureStrategy": "Abandon"},
     "extensions.durableTask.versionFailureStrategy must be one of Reject, Fail, not \"Abandon\""),
    ({"versionFailureStrategy": ["Fail"]}, "versionFailureStrategy must be one of Reject, Fail"),
    ({"defaultVersion": 1.0}, 'extensions.durableTask.defaultVersion must be a string, like "1.0", not 1.0'),
    ({"defaultVersion": {"major": 1}}, "defaultVersion must be a string"),
])
def test_bad_versioning_settings_are_clear_errors(tmp_path: Path, settings: dict[str, object], message: str) -> None:
    write(tmp_path / "host.json", {"extensions": {"durableTask": settings}})
    with pytest.raises(ConfigError) as caught:
        load_host_config(tmp_path)
    assert message in str(caught.value)


def test_the_hub_option_replaces_host_json_hub_name_without_resolving_it(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSET_HUB_SETTING", raising=False)
    write(tmp_path / "host.json", {"extensions": {"durableTask": {"hubName": "%UNSET_HUB_SETTING%"}}})

    assert load_host_config(tmp_path, hub_name="FromOption").durable.hub_name == "FromOption"
    with pytest.raises(ConfigError, match="UNSET_HUB_SETTING"):
        load_host_config(tmp_path)


@pytest.mark.parametrize("value, expected", [
    (None, OverridableStates.NON_RUNNING_STATES),  # DurableTaskOptions' default
    ("AnyState", OverridableStates.ANY_STATE),
    (" nonrunningstates ", OverridableStates.NON_RUNNING_STATES),
    (0, OverridableStates.ANY_STATE),  # the enum's number, in the extension's declaration order
])
def test_overridable_existing_instance_states(tmp_path: Path, value: object, expected: OverridableStates) -> None:
    section = {} if value is None else {"overridableExistingInstanceStates": value}
    write(tmp_path / "host.json", {"extensions": {"durableTask": section}})
    assert load_host_config(tmp_path).durable.overridable_existing_instance_states is expected


def test_an_unknown_overridable_existing_instance_states_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "host.json", {"extensions": {"durableTask": {"overridableExistingInstanceStates": "Never"}}})
    with pytest.raises(ConfigError) as caught:
        load_host_config(tmp_path)
    assert ("extensions.durableTask.overridableExistingInstanceStates must be one of AnyState, NonRunningStates, "
            "not \"Never\"") in str(caught.value)

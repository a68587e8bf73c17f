"""Reading ``settings.HOTCONFIG`` (hotconfig_django.conf): what each entry becomes, and the
error a bad one raises.

test_checks.py shows each bad entry as a system check message; here is what ``load()`` makes
of good ones, what it raises for bad ones, and what reaches the client.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from hotconfig import HotConfigError, Timings
from hotconfig_django import conf
from hotconfig_django.errors import HotConfigSettingsError
from tests.integrations.django.live_settings import Settings


def load(**entries: Any) -> conf.DjangoConf:
    with override_settings(HOTCONFIG=entries):
        return conf.load()


def refused(**entries: Any) -> HotConfigSettingsError:
    with override_settings(HOTCONFIG=entries), pytest.raises(HotConfigSettingsError) as raised:
        conf.load()
    return raised.value


def test_an_empty_hotconfig_is_every_default() -> None:
    loaded = load()
    assert loaded == conf.DjangoConf()
    assert (loaded.scopes, loaded.start, loaded.start_timeout, loaded.health) == (
        ("global",),
        "auto",
        5.0,
        True,
    )


@pytest.mark.parametrize(("start", "mode"), [("auto", "auto"), (True, "always"), (False, "never")])
def test_start_says_which_processes_listen(start: object, mode: str) -> None:
    assert load(START=start).start == mode


def test_a_whole_number_of_seconds_and_a_model_class_are_taken_as_they_are() -> None:
    loaded = load(START_TIMEOUT=0, MODEL=Settings, SCOPES=("global", "env:test"))
    assert (loaded.start_timeout, loaded.model, loaded.scopes) == (
        0.0,
        Settings,
        ("global", "env:test"),
    )
    assert isinstance(loaded.start_timeout, float)


@pytest.mark.parametrize("timeout", [True, -1, "5", None])
def test_a_timeout_that_is_not_seconds_is_refused(timeout: object) -> None:
    assert refused(START_TIMEOUT=timeout).problem.id == "hotconfig.E007"


def test_the_error_is_improperly_configured_and_says_what_and_how_to_fix() -> None:
    error = refused(START="yes")
    assert isinstance(error, ImproperlyConfigured)
    assert isinstance(error, HotConfigError)
    problem = error.problem
    assert str(error) == f"{problem.msg} ({problem.id}: {problem.hint})"
    assert str(error).startswith("HOTCONFIG['START'] = 'yes' is not one of 'auto', True, False")


def test_load_raises_the_first_problem_and_problems_lists_them_all() -> None:
    entries = {"URL": 6379, "START": "yes", "SERVICE": 7}
    assert refused(**entries).problem.id == "hotconfig.E003"
    with override_settings(HOTCONFIG=entries):
        found = conf.problems()
    assert [p.id for p in found] == ["hotconfig.E003", "hotconfig.E007", "hotconfig.E002"]
    assert found[0].msg == "HOTCONFIG['URL'] must be a string, not int"
    assert found[2].msg == "HOTCONFIG['SERVICE'] must be a string"


@pytest.mark.parametrize("raw", [["URL", "redis://"], "redis://127.0.0.1", None])
def test_a_hotconfig_that_is_not_a_dict_is_refused_with_an_example(raw: object) -> None:
    with override_settings(HOTCONFIG=raw), pytest.raises(HotConfigSettingsError) as raised:
        conf.load()
    assert raised.value.problem.id == "hotconfig.E001"
    assert "must be a dict" in str(raised.value)
    assert 'HOTCONFIG = {"URL"' in raised.value.problem.hint


def test_an_entry_must_be_written_in_capitals_and_the_known_ones_are_listed() -> None:
    problem = refused(namespace="shop").problem
    assert (problem.id, problem.msg) == (
        "hotconfig.E002",
        "HOTCONFIG has an unknown entry 'namespace'",
    )
    assert "NAMESPACE" in problem.hint
    assert "URL" in problem.hint
    assert "POLL_INTERVAL" not in problem.hint  # a deprecated flat entry is not advertised


def test_other_client_arguments_reach_the_client_and_health_is_attached_by_the_integration() -> (
    None
):
    loaded = load(NAMESPACE="shop", HEALTH=False, CACHE_PATH="cache/hotconfig.json", SERVICE="web")
    kwargs = loaded.client_kwargs()
    assert kwargs["namespace"] == "shop"
    assert (kwargs["service"], kwargs["cache_path"]) == ("web", "cache/hotconfig.json")
    assert kwargs["health"] is False  # build_client attaches a reporter saying "django"
    assert loaded.health is False
    assert "HEALTH" not in loaded.options
    assert load().client_kwargs()["health"] is False


def test_a_group_given_whole_and_a_flat_entry_of_it_at_once_is_refused() -> None:
    with pytest.warns(DeprecationWarning, match="POLL_INTERVAL"):
        problem = refused(TIMINGS=Timings(), POLL_INTERVAL=1.0).problem
    assert problem.id == "hotconfig.E002"
    assert problem.msg == "HOTCONFIG has both 'TIMINGS' and 'POLL_INTERVAL'"


def test_the_url_connected_to_falls_back_to_the_environment_and_is_shown_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOTCONFIG_URL", "redis://:hunter2@10.0.0.5:6390/3")
    loaded = load()
    assert loaded.url is None
    assert loaded.effective_url == "redis://:hunter2@10.0.0.5:6390/3"
    assert "hunter2" not in loaded.shown_url
    assert "10.0.0.5:6390/3" in loaded.shown_url
    assert load(URL="redis://127.0.0.1:7000/1").effective_url == "redis://127.0.0.1:7000/1"


def test_a_client_that_cannot_be_built_is_refused_naming_the_entry() -> None:
    with override_settings(HOTCONFIG={"SIGNING_KEYS": "no-equals-sign"}):
        loaded = conf.load()  # the entry's value is the client's to check
        with pytest.raises(HotConfigSettingsError) as raised:
            conf.build_client(loaded)
    assert raised.value.problem.id == "hotconfig.E008"
    assert str(raised.value).startswith("HOTCONFIG cannot build a client:")


def test_the_constance_backend_is_recognised_by_its_dotted_path() -> None:
    assert conf.uses_constance_backend()  # the test project's settings
    with override_settings(CONSTANCE_BACKEND="constance.backends.database.DatabaseBackend"):
        assert not conf.uses_constance_backend()

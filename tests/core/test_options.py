"""The option groups of a client (hotconfig/_config/options.py): Timings, Limits, Connection,
checked when made, frozen, given as objects or mappings; and the flat keyword arguments of
earlier releases, folded into their groups with a warning that names the replacement."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest
import redis

from hotconfig import Connection, HotConfig, Limits, Timings
from hotconfig.testing import EmbeddedServer
from tests.waiting import eventually

UNREACHABLE = "redis://127.0.0.1:1/0"


@pytest.mark.parametrize(
    ("make", "fix"),
    [
        (lambda: Timings(poll_interval=0), r"Timings\(poll_interval=5.0\)"),
        (lambda: Timings(probe_interval=-1), r"Timings\(probe_interval=30.0\)"),
        (lambda: Limits(max_batch=2.5), r"Limits\(max_batch=10000\)"),  # type: ignore[arg-type]
        (lambda: Connection(redis_kwargs=["ssl"]), r"redis_kwargs=\{'ssl_ca_certs'"),  # type: ignore[arg-type]
    ],
)
def test_a_bad_option_group_says_what_works(make: Callable[[], object], fix: str) -> None:
    with pytest.raises(ValueError, match=fix):
        make()


def test_the_option_groups_are_frozen_and_keep_no_reference_to_the_callers_dict() -> None:
    kwargs = {"ssl_ca_certs": "ca.pem", "password": "hunter2"}
    connection = Connection(redis_kwargs=kwargs)
    kwargs["ssl_ca_certs"] = "other.pem"
    assert connection.redis_kwargs["ssl_ca_certs"] == "ca.pem"
    assert "hunter2" not in repr(connection)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Timings().poll_interval = 1.0  # type: ignore[misc]


def test_a_group_given_as_a_mapping_names_an_unknown_field() -> None:
    with pytest.raises(TypeError, match="Timings has no field poll_intervall"):
        HotConfig(UNREACHABLE, timings={"poll_intervall": 1.0})


def test_the_flat_arguments_of_earlier_releases_still_work_and_name_their_replacement(
    server: EmbeddedServer,
) -> None:
    with pytest.warns(DeprecationWarning, match="is deprecated") as w:
        config = HotConfig(server.url, max_depth=8, poll_interval=30.0, health=False)
    assert [str(m.message).split(": ")[1] for m in w] == [
        "pass limits=hotconfig.Limits(max_depth=...)",
        "pass timings=hotconfig.Timings(poll_interval=...)",
    ]
    assert all(m.filename == __file__ for m in w)  # the warning points at the caller's line
    nested: object = "x"
    for _ in range(10):
        nested = [nested]
    with config, redis.Redis(server.host, server.port) as publisher:
        publisher.publish("config:changes", json.dumps({"key": "deep", "value": nested}))
        assert eventually(lambda: config.stats.rejected == 1)
        assert str(config.stats.last_rejection).startswith("too_deep")


def test_an_unknown_argument_or_one_given_twice_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'poll_intervall'"):
        HotConfig(UNREACHABLE, poll_intervall=1.0)
    with pytest.raises(TypeError, match="pass poll_interval inside timings="):
        HotConfig(UNREACHABLE, timings=Timings(), poll_interval=1.0)

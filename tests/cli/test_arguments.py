"""What the command line may say (hotconfig.cli.arguments): the group's options anywhere on
the line, the command's own options first, and numbers of seconds that are numbers."""

from __future__ import annotations

import math

import click
import pytest

from hotconfig.cli import group
from hotconfig.cli.arguments import Seconds, hoisted


def read(*args: str) -> list[str]:
    with click.Context(group) as ctx:
        return hoisted(group, ctx, list(args))


def test_the_group_s_options_after_the_command_move_in_front_of_it() -> None:
    assert read("get", "k", "--json") == ["--json", "get", "k"]
    assert read("get", "k", "--url", "redis://h/1", "--scope", "s") == [
        "--url",
        "redis://h/1",
        "get",
        "k",
        "--scope",
        "s",
    ]
    assert read("--json", "list", "--namespace=shop") == ["--json", "--namespace=shop", "list"]
    assert read("history", "--show-secrets", "--limit", "5") == [
        "--show-secrets",
        "history",
        "--limit",
        "5",
    ]


def test_the_command_s_own_options_and_values_stay_where_they_are() -> None:
    # demo has a --url of its own: it wins over the group's.
    assert read("demo", "--url", "redis://h/0") == ["demo", "--url", "redis://h/0"]
    # A value of the command's option is never read as an option.
    assert read("history", "--key", "--json") == ["history", "--key", "--json"]
    # Nothing after -- moves.
    assert read("set", "k", "--", "--json") == ["set", "k", "--", "--json"]
    # An unknown command is left for click to name.
    assert read("nope", "--json") == ["nope", "--json"]
    assert read("--json") == ["--json"]


@pytest.mark.parametrize("text", ["-1", "nan", "inf", "-inf", "soon"])
def test_seconds_that_are_not_a_finite_number_from_0_are_a_usage_error(text: str) -> None:
    with pytest.raises(click.BadParameter):
        Seconds().convert(text, None, None)


def test_seconds_are_a_float_from_0() -> None:
    assert Seconds().convert("2.5", None, None) == 2.5
    assert Seconds().convert("0", None, None) == 0.0
    assert math.isclose(Seconds().convert("1e-3", None, None), 0.001)

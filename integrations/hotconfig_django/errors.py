"""The exceptions the Django integration adds to hotconfig's tree::

hotconfig.HotConfigError
├── NotConfiguredError (RuntimeError)
│   └── ConfigNotReadyError        config read before the app's ready() ran
├── HotConfigSettingsError         (ImproperlyConfigured) a bad ``settings.HOTCONFIG``
└── ReceiverError                  (RuntimeError) config_updated receivers that raised
"""

from __future__ import annotations

from typing import NamedTuple, Self

from django.core.exceptions import AppRegistryNotReady, ImproperlyConfigured

from hotconfig import HotConfigError, NotConfiguredError

__all__ = ["ConfigNotReadyError", "HotConfigSettingsError", "Problem", "ReceiverError"]


class Problem(NamedTuple):
    """One thing wrong with ``settings.HOTCONFIG``, in the shape of a system check message."""

    id: str
    msg: str
    hint: str


class ConfigNotReadyError(NotConfiguredError, AppRegistryNotReady):
    """``hotconfig_django.config`` was read before ``HotConfigDjangoConfig.ready()`` ran."""


class HotConfigSettingsError(HotConfigError, ImproperlyConfigured):
    """``settings.HOTCONFIG`` cannot be used; the message names the entry and how to fix it."""

    problem: Problem

    @classmethod
    def of(cls, problem: Problem) -> Self:
        error = cls(f"{problem.msg} ({problem.id}: {problem.hint})")
        error.problem = problem
        return error


class ReceiverError(HotConfigError, RuntimeError):
    """One or more receivers of ``hotconfig_django.signals.config_updated`` raised."""

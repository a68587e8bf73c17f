"""Which client the current application context means (hotconfig_flask.current).

test_extension.py reads through the extension outside any context and in an app without
init_app; here is the lookup itself: nested contexts of two apps, and the error it builds.
"""

from __future__ import annotations

import pytest
from flask import Flask

from hotconfig_flask.current import EXTENSION, current_app_object, current_client, lookup_error
from hotconfig_flask.errors import NoAppContextError, NotRegisteredError
from tests.integrations.flask.conftest import AppFactory


def test_the_client_is_the_one_of_the_innermost_app_context(make_app: AppFactory) -> None:
    billing = make_app(HOTCONFIG_SERVICE="billing")
    search = make_app(HOTCONFIG_SERVICE="search")
    with billing.app_context():
        assert current_client() is billing.extensions[EXTENSION]
        with search.app_context():
            assert current_app_object() is search
            assert current_client() is search.extensions[EXTENSION]
        assert current_client() is billing.extensions[EXTENSION]


def test_outside_any_context_the_error_says_how_to_get_one() -> None:
    error = lookup_error()
    assert isinstance(error, NoAppContextError)
    assert "with app.app_context():" in str(error)
    with pytest.raises(NoAppContextError) as raised:
        current_client()
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__  # not chained to Flask's own RuntimeError


def test_in_an_app_without_the_extension_the_error_names_the_app() -> None:
    with Flask("orders").app_context():
        error = lookup_error()
        assert isinstance(error, NotRegisteredError)
        assert "'orders'" in str(error)
        assert "init_app(app)" in str(error)
        with pytest.raises(NotRegisteredError) as raised:
            current_client()
    assert raised.value.__suppress_context__  # not chained to the KeyError of extensions

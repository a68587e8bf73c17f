"""The context processor: templates render the typed settings of the moment."""

from __future__ import annotations

from typing import Any

from django.test import Client, override_settings

from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer
from hotconfig_django import LazyConfig, lifecycle
from hotconfig_django.testing import override_config


def test_a_page_renders_the_model_defaults() -> None:
    page = Client().get("/").content.decode()
    assert page == '<h1>hello</h1><p class="banner">Welcome</p><p>20 per page</p>\n'


def test_a_page_renders_a_live_change(live: LazyConfig, server: EmbeddedServer) -> None:
    with ConfigStore(server.url) as store:
        version = store.set_many(
            {"greeting": "bonjour", "banner.text": "Sale", "items_per_page": 5}
        )
    assert live.wait_for_version(version, timeout=5)
    page = Client().get("/").content.decode()
    assert page == '<h1>bonjour</h1><p class="banner">Sale</p><p>5 per page</p>\n'


def test_template_values_are_escaped() -> None:
    with override_config(greeting="<script>x</script>"):
        page = Client().get("/").content.decode()
    assert "<h1>&lt;script&gt;x&lt;/script&gt;</h1>" in page


def test_without_a_model_templates_read_the_snapshot(hotconfig_settings: dict[str, Any]) -> None:
    untyped = {k: v for k, v in hotconfig_settings.items() if k != "MODEL"}
    with override_settings(HOTCONFIG=untyped):
        lifecycle.setup()
        with override_config(greeting="untyped", items_per_page=7):
            page = Client().get("/").content.decode()
    assert page == '<h1>untyped</h1><p class="banner"></p><p>7 per page</p>\n'

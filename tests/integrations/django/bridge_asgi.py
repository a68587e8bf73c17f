"""``uvicorn tests.integrations.django.bridge_asgi:application``: the bridge's test project.

Django's ASGI app wrapped by ``hotconfig_django.bridge.asgi`` for the WebSockets.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from hotconfig_django.bridge import asgi
from tests.integrations.django.bridged import bridge, check_handshake

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integrations.django.bridge_settings")

application = asgi(get_asgi_application(), bridge, authorize=check_handshake)

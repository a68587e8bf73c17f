"""``gunicorn tests.integrations.django.bridge_wsgi:application``: the bridge's test project
under WSGI (the URLs of ``bridged.py``, as ``bridge_asgi.py`` serves them under ASGI)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integrations.django.bridge_settings")

application = get_wsgi_application()

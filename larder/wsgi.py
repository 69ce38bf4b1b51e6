"""WSGI entry point: Django, behind the /get-online-features fast path (serving/fast_path.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "larder.settings")
application = get_wsgi_application()

from serving.fast_path import wrap  # noqa: E402 - needs the apps loaded above

application = wrap(application)

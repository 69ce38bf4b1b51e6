"""The one JSON POST helper the API test suites share."""

import json
from typing import Any

from django.test import Client


def post_json(client: Client, path: str, body: Any, **headers: str):
    """POST `body` as JSON to `path`."""
    return client.post(path, json.dumps(body), content_type="application/json", **headers)

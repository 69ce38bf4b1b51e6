"""Settings for the test suite: the real settings plus what makes tests fast.

pytest-django loads settings before any conftest runs, so the test flag is set here.
"""

import os
import tempfile

os.environ.setdefault("LARDER_TESTING", "1")
# The built-in provider is mounted in tests (its routes are walked by the URL-gate test);
# its signing key goes to a per-process temporary file, never var/.
os.environ.setdefault("LARDER_BUILTIN_IDP", "1")
os.environ.setdefault("LARDER_OIDC_SIGNING_KEY_FILE", os.path.join(tempfile.mkdtemp(prefix="larder-test-"), "oidc.pem"))

from .settings import *  # noqa: F403

# Users are created in most tests; the default PBKDF2 costs ~0.2 s each.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

"""Settings for the test suite: the real settings plus what makes tests fast.

pytest-django loads settings before any conftest runs, so the test flag is set here.
"""

import os
import warnings

os.environ.setdefault("LARDER_TESTING", "1")

from .settings import *  # noqa: F403

# Users are created in most tests; the default PBKDF2 costs ~0.2 s each.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# var/static exists only after collectstatic; whitenoise's warning about it is noise here.
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")

"""Larder settings, all read from environment variables in this one module.

The defaults are the embedded demo (SQLite, SQL online store, DuckDB over Parquet,
the app's own identity provider) so that `make run` needs no server; production
sets DATABASE_URL, REDIS_URL and the LARDER_* variables below.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable ("1", "true", "yes", "on" are true)."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated environment variable into a list of non-empty items."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("LARDER_DEBUG", False)
SECRET_KEY = os.environ.get("LARDER_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not env_bool("LARDER_DEMO", False) and not env_bool("LARDER_TESTING", False):
        raise RuntimeError("LARDER_SECRET_KEY must be set (or LARDER_DEBUG/LARDER_DEMO for local use)")
    SECRET_KEY = "larder-insecure-local-key-do-not-use-in-production"  # noqa: S105 - demo/test only

ALLOWED_HOSTS = env_list("LARDER_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("LARDER_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "access",
    "catalog",
    "serving",
    "materialization",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "access.middleware.LoginRequiredMiddleware",
]

ROOT_URLCONF = "larder.urls"
WSGI_APPLICATION = "larder.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'larder.sqlite3'}",
        conn_max_age=int(os.environ.get("LARDER_DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Applies and web requests share one file: wait for the writer instead of failing.
    # IMMEDIATE makes concurrent applies queue for the write lock instead of failing
    # with "database is locked" (select_for_update is a no-op on SQLite).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Paths that anonymous users may reach; everything else needs a login (HTML) or a
# token (API). Kept short on purpose: see access.middleware and the URL-walk test.
LARDER_PUBLIC_PATHS = ["/health", "/accounts/login/", "/static/"]
LARDER_API_PREFIXES = [
    "/api/",
    "/get-online-features",
    "/push",
    "/write-to-online-store",
    "/materialize",
    "/materialize-incremental",
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "access.api.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["access.api.IsAuthenticatedGate"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "access.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Larder API",
    "DESCRIPTION": "Feature registry, online serving and historical retrieval.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # ReDoc's JavaScript comes from the installed sidecar package, never a CDN.
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Where feature repos' relative paths (Parquet files) are resolved at apply time.
LARDER_DATA_DIR = Path(os.environ.get("LARDER_DATA_DIR", BASE_DIR / "var" / "data"))
LARDER_ONLINE_STORE = os.environ.get("LARDER_ONLINE_STORE", "sql")

# --- Identity (docs/identity.md) -------------------------------------------------
# Claim paths, Feast's defaults; `{client_id}` is replaced by LARDER_OIDC_CLIENT_ID.
LARDER_OIDC_CLIENT_ID = os.environ.get("LARDER_OIDC_CLIENT_ID", "larder-portal")
LARDER_OIDC_ROLES_CLAIMS = env_list("LARDER_OIDC_ROLES_CLAIMS", "resource_access.{client_id}.roles,roles")
LARDER_OIDC_GROUPS_CLAIMS = env_list("LARDER_OIDC_GROUPS_CLAIMS", "groups")
LARDER_OIDC_USERNAME_CLAIMS = env_list("LARDER_OIDC_USERNAME_CLAIMS", "preferred_username,upn,azp,appid,sub")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LARDER_LOG_LEVEL", "INFO")},
}

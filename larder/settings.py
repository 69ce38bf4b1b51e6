"""Larder settings, all read from environment variables in this one module.

The defaults are the embedded demo (SQLite, SQL online store, DuckDB over Parquet,
the app's own identity provider) so that `make run` needs no server; production
sets DATABASE_URL, REDIS_URL and the LARDER_* variables below.
"""

import os
from pathlib import Path

import dj_database_url
from django.utils.functional import lazy

from access.identity.signing_key import signing_key_pem

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
# Behind a TLS-terminating proxy: the header (and value) it sets on https requests,
# e.g. LARDER_SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO=https". Trust it only
# when the proxy strips that header from what clients send.
if os.environ.get("LARDER_SECURE_PROXY_SSL_HEADER"):
    _header, _, _value = os.environ["LARDER_SECURE_PROXY_SSL_HEADER"].partition("=")
    SECURE_PROXY_SSL_HEADER = (_header.strip(), _value.strip() or "https")
SECURE_SSL_REDIRECT = env_bool("LARDER_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(os.environ.get("LARDER_SECURE_HSTS_SECONDS", "0"))

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
    "oauth2_provider",  # access.ServiceAccount links to its Application (identity issue)
    "mozilla_django_oidc",
    "django_htmx",  # serves htmx.min.js from the installed package; request.htmx
    "django_celery_beat",  # materialization schedules: PeriodicTask rows read by `celery beat`
    "access",
    "catalog",
    "serving",
    "materialization",
]
# Named explicitly: migrations that point at django-oauth-toolkit's (swappable) Application
# resolve it through this setting (access.ServiceAccount.application).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"

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
    "django_htmx.middleware.HtmxMiddleware",
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
                "materialization.alerts.context_processor",  # the failed-schedule banner in base.html
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

if DATABASES["default"]["ENGINE"].endswith("postgresql") and not env_bool("LARDER_DB_JIT", False):
    # PostgreSQL JIT-compiles any plan estimated above jit_above_cost. The portal's heaviest
    # statements (a search word matching 17,000 of 110,000 documents, with facets) qualify
    # and pay 10-30 ms of compilation to run for 20: search p95 47 ms without, 74 ms with
    # (docs/benchmarks.md, "Catalog search"). The offline engine's own sessions keep it.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()

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
# plotly.js comes from the installed plotly package (never a CDN, never a committed copy).
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "catalog.staticfinders.PackageFileFinder",
]

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
        "access.identity.authentication.BearerAuthentication",
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
# With LARDER_ONLINE_STORE=redis: REDIS_URL names a Redis Cluster seed node (serving/online/redis.py).
LARDER_REDIS_CLUSTER = env_bool("LARDER_REDIS_CLUSTER", False)
# The project the feature-server endpoints serve when a request names none (Feast clients
# never do); empty: the only project, if there is exactly one (serving/api/base.py).
LARDER_SERVING_PROJECT = os.environ.get("LARDER_SERVING_PROJECT", "")
# POST /get-online-features answered ahead of Django's middleware for callers whose bearer
# token this process has already verified (serving/fast_path.py); off: always through DRF.
LARDER_SERVING_FAST_PATH = env_bool("LARDER_SERVING_FAST_PATH", True)
# How long a verified bearer token is remembered at most (access/identity/bearer_cache.py);
# revocations recorded in Larder's database apply at once whatever this says. 0: never.
LARDER_BEARER_CACHE_SECONDS = float(os.environ.get("LARDER_BEARER_CACHE_SECONDS", "60"))
# Offline engines (serving/offline/): DuckDB's per-call memory cap and threads (it spills
# to LARDER_DUCKDB_TEMP_DIR beyond the cap); postgres sources name their DSN's variable.
LARDER_DUCKDB_MEMORY_LIMIT = os.environ.get("LARDER_DUCKDB_MEMORY_LIMIT", "2GB")
LARDER_DUCKDB_THREADS = int(os.environ.get("LARDER_DUCKDB_THREADS", "2"))
LARDER_DUCKDB_TEMP_DIR = os.environ.get("LARDER_DUCKDB_TEMP_DIR", "")  # "" = <system temp>/larder-duckdb
LARDER_POSTGRES_OFFLINE_WORK_MEM = os.environ.get("LARDER_POSTGRES_OFFLINE_WORK_MEM", "256MB")  # per join session

# --- Identity (docs/identity.md) -------------------------------------------------
# Claim paths, Feast's defaults; `{client_id}` is replaced by LARDER_OIDC_CLIENT_ID.
LARDER_OIDC_CLIENT_ID = os.environ.get("LARDER_OIDC_CLIENT_ID", "larder-portal")
LARDER_OIDC_ROLES_CLAIMS = env_list("LARDER_OIDC_ROLES_CLAIMS", "resource_access.{client_id}.roles,roles")
LARDER_OIDC_GROUPS_CLAIMS = env_list("LARDER_OIDC_GROUPS_CLAIMS", "groups")
LARDER_OIDC_USERNAME_CLAIMS = env_list("LARDER_OIDC_USERNAME_CLAIMS", "preferred_username,upn,azp,appid,sub")

# --- Bearer tokens on the API (access.identity.authentication, docs/api.md) ------------
# Verifiers tried in order; each claims only its own kind of token: personal `lrd_`
# tokens, Kubernetes service-account JWTs, OIDC JWTs, opaque provider tokens.
LARDER_BEARER_VERIFIERS = [
    "access.identity.personal_tokens.verify",
    "access.identity.kubernetes.verify",  # only when LARDER_AUTH_KUBERNETES (docs/identity-kubernetes.md)
    "access.identity.jwt_tokens.verify",
    "access.identity.dot_tokens.verify",  # the built-in provider's opaque tokens (service accounts)
]
# OIDC JWT access tokens (access.identity.jwt_tokens): the discovery document, or the JWKS
# URL and issuer given explicitly (explicit values win). Neither: JWTs are not accepted.
LARDER_OIDC_DISCOVERY_URL = os.environ.get("LARDER_OIDC_DISCOVERY_URL", "")
LARDER_OIDC_JWKS_URL = os.environ.get("LARDER_OIDC_JWKS_URL", "")
LARDER_OIDC_ISSUER = os.environ.get("LARDER_OIDC_ISSUER", "")
LARDER_OIDC_AUDIENCE = env_list("LARDER_OIDC_AUDIENCE")  # checked only when set; any one must match
LARDER_OIDC_ALGORITHMS = env_list("LARDER_OIDC_ALGORITHMS", "RS256,ES256")  # asymmetric only: none/HS* never
LARDER_OIDC_LEEWAY_SECONDS = int(os.environ.get("LARDER_OIDC_LEEWAY_SECONDS", "10"))
LARDER_OIDC_JWKS_CACHE_SECONDS = int(os.environ.get("LARDER_OIDC_JWKS_CACHE_SECONDS", "300"))
LARDER_OIDC_JWKS_MIN_REFRESH_SECONDS = int(os.environ.get("LARDER_OIDC_JWKS_MIN_REFRESH_SECONDS", "30"))
LARDER_OIDC_HTTP_TIMEOUT_SECONDS = float(os.environ.get("LARDER_OIDC_HTTP_TIMEOUT_SECONDS", "5"))
# Personal API tokens (the /account/tokens/ page): lifetime in days, default and maximum.
LARDER_API_TOKEN_DEFAULT_DAYS = int(os.environ.get("LARDER_API_TOKEN_DEFAULT_DAYS", "30"))
LARDER_API_TOKEN_MAX_DAYS = int(os.environ.get("LARDER_API_TOKEN_MAX_DAYS", "365"))

# --- Kubernetes service-account tokens (docs/identity-kubernetes.md) ------------------
# Off by default. Larder's namespace is where RoleBindings give service accounts roles.
LARDER_AUTH_KUBERNETES = env_bool("LARDER_AUTH_KUBERNETES", False)
_K8S_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
LARDER_KUBERNETES_NAMESPACE = (
    os.environ.get("LARDER_KUBERNETES_NAMESPACE")
    or (_K8S_NAMESPACE_FILE.read_text().strip() if _K8S_NAMESPACE_FILE.is_file() else "")
    or "larder"
)
# Empty: in-cluster config (kubernetes.config.load_incluster_config).
LARDER_KUBERNETES_API_URL = os.environ.get("LARDER_KUBERNETES_API_URL", "")
LARDER_KUBERNETES_CA_FILE = os.environ.get("LARDER_KUBERNETES_CA_FILE", "")
LARDER_KUBERNETES_TOKEN_FILE = os.environ.get("LARDER_KUBERNETES_TOKEN_FILE", "")
LARDER_KUBERNETES_CACHE_SECONDS = float(os.environ.get("LARDER_KUBERNETES_CACHE_SECONDS", "60"))

# --- Browser login (OIDC) and the built-in provider (docs/identity.md) ----------------
# Where browsers and the portal itself reach this site (the built-in provider's issuer,
# its registered redirect URIs, the server-to-server token calls).
LARDER_PUBLIC_URL = os.environ.get("LARDER_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# The app's own OIDC provider under /o/ with its sign-in page /idp/login/ (the demo's);
# off in production, where an external provider is configured instead.
LARDER_BUILTIN_IDP = env_bool("LARDER_BUILTIN_IDP", False)
# The local username/password form on /accounts/login/ and /admin/login/ (the demo's).
LARDER_LOCAL_LOGIN = env_bool("LARDER_LOCAL_LOGIN", False)
# The sign-in button's "Sign in with <name>"; default "Larder ID" for the built-in provider.
LARDER_OIDC_PROVIDER_NAME = os.environ.get("LARDER_OIDC_PROVIDER_NAME", "")
# An external provider: LARDER_OIDC_DISCOVERY_URL (above), and/or these, which win over it.
LARDER_OIDC_AUTHORIZATION_ENDPOINT = os.environ.get("LARDER_OIDC_AUTHORIZATION_ENDPOINT", "")
LARDER_OIDC_TOKEN_ENDPOINT = os.environ.get("LARDER_OIDC_TOKEN_ENDPOINT", "")
LARDER_OIDC_USERINFO_ENDPOINT = os.environ.get("LARDER_OIDC_USERINFO_ENDPOINT", "")
LARDER_OIDC_END_SESSION_ENDPOINT = os.environ.get("LARDER_OIDC_END_SESSION_ENDPOINT", "")
LARDER_OIDC_CLIENT_SECRET = os.environ.get("LARDER_OIDC_CLIENT_SECRET", "")
# Read when LARDER_OIDC_CLIENT_SECRET is empty; `manage.py setup_identity` writes it.
LARDER_OIDC_CLIENT_SECRET_FILE = Path(
    os.environ.get("LARDER_OIDC_CLIENT_SECRET_FILE") or BASE_DIR / "var" / "oidc-client-secret"
)
LARDER_OIDC_SCOPES = os.environ.get("LARDER_OIDC_SCOPES", "openid email profile")
# The built-in provider's RS256 key: the PEM itself (production), else a file made on first use.
LARDER_OIDC_SIGNING_KEY = os.environ.get("LARDER_OIDC_SIGNING_KEY", "")
LARDER_OIDC_SIGNING_KEY_FILE = Path(
    os.environ.get("LARDER_OIDC_SIGNING_KEY_FILE") or BASE_DIR / "var" / "oidc-signing-key.pem"
)
# The scope a built-in provider token needs for the API (client credentials: `scope=api`).
LARDER_API_SCOPE = os.environ.get("LARDER_API_SCOPE", "api")

LARDER_PUBLIC_PATHS = [
    *LARDER_PUBLIC_PATHS,
    "/oidc/",  # authenticate, callback
    *(["/o/", "/idp/login/"] if LARDER_BUILTIN_IDP else []),  # the provider's endpoints and sign-in page
]
AUTHENTICATION_BACKENDS = [
    "access.identity.oidc_backend.LarderOIDCBackend",
    "django.contrib.auth.backends.ModelBackend",  # the built-in provider's users; the local form
]

# mozilla-django-oidc (endpoints and secret: access.identity.rp, resolved per login).
OIDC_RP_CLIENT_ID = LARDER_OIDC_CLIENT_ID
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES = LARDER_OIDC_SCOPES
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_STORE_ID_TOKEN = True  # the id_token_hint of RP-initiated logout
OIDC_TIMEOUT = LARDER_OIDC_HTTP_TIMEOUT_SECONDS
OIDC_OP_LOGOUT_URL_METHOD = "access.identity.rp.provider_logout_url"
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?failed=1"

# django-oauth-toolkit: the built-in provider.
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": lazy(signing_key_pem, str)() if LARDER_BUILTIN_IDP else "",
    "OIDC_ISS_ENDPOINT": f"{LARDER_PUBLIC_URL}/o",
    "OAUTH2_VALIDATOR_CLASS": "access.identity.provider.LarderOAuth2Validator",
    "SCOPES": {
        "openid": "Sign you in",
        "profile": "Your username and name",
        "email": "Your email address",
        LARDER_API_SCOPE: "Call the Larder API as you (or as the service account)",
    },
    "DEFAULT_SCOPES": [LARDER_API_SCOPE],
    "PKCE_REQUIRED": True,
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("LARDER_OAUTH_ACCESS_TOKEN_SECONDS", "3600")),
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,  # access.identity.idp decides when to ask
    # RFC 9700 now rather than at DOT 4.0: no implicit or password grant, S256 PKCE only,
    # no tokens in query strings, token text never stored (only its SHA-256).
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
}

# --- Celery (larder/celery.py; historical jobs, materialization) ---------------------
# Redis when REDIS_URL is set; otherwise kombu's filesystem transport under var/celery/,
# which needs no server (a worker beside `make run`: `celery -A larder worker`). Job
# state lives in our own tables (HistoricalJob...), so no result backend is needed
# without Redis. LARDER_CELERY_EAGER runs tasks in the calling process (tests, demos).
_CELERY_DIR = Path(os.environ.get("LARDER_CELERY_DIR") or BASE_DIR / "var" / "celery")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or REDIS_URL or None
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(_CELERY_DIR / "queue"),
        "data_folder_out": str(_CELERY_DIR / "queue"),
        "control_folder": str(_CELERY_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem://")
    else {}
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is redelivered, not lost...
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # ...also when the worker process is killed
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long jobs: a worker takes one at a time
CELERY_TASK_ALWAYS_EAGER = env_bool("LARDER_CELERY_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = CELERY_TASK_ALWAYS_EAGER
CELERY_TIMEZONE = "UTC"
# Periodic tasks run by `celery -A larder beat` (the materialization issue adds its own).
CELERY_BEAT_SCHEDULE = {
    "historical-results-cleanup": {"task": "serving.historical.cleanup_expired_results", "schedule": 3600.0},
}

# --- Materialization (materialization/, docs/materialization.md) -------------------------
# `celery -A larder beat` reads schedules from the database (django-celery-beat), where
# feature views' schedules (repo `schedule:` or the admin) are kept.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE["materialization-recover-stalled"] = {
    "task": "materialization.recover_stalled",
    "schedule": float(os.environ.get("LARDER_MATERIALIZE_RECOVER_SECONDS", "60")),
}
# Redis redelivers a message its worker never acknowledged (a killed worker) after this
# many seconds; it must exceed the longest partition, or a running one is delivered twice
# (harmless: the second waits for the first's lease, but it ties up a worker).
# Each worker looks for such messages every LARDER_CELERY_RESTORE_SECONDS.
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "visibility_timeout": float(os.environ.get("LARDER_CELERY_VISIBILITY_TIMEOUT", "3600")),
        "unacked_restore_interval": float(os.environ.get("LARDER_CELERY_RESTORE_SECONDS", "10")),
        "unacked_restore_throttle": 1,
    }
# incremental runs with no earlier interval and no ttl look back this far (Feast: 52 weeks).
LARDER_MATERIALIZE_DEFAULT_LOOKBACK_DAYS = float(os.environ.get("LARDER_MATERIALIZE_DEFAULT_LOOKBACK_DAYS", "364"))
# Rows per online-store write (Feast's local engine: 10,000); bounds memory with one Arrow batch.
LARDER_MATERIALIZE_BATCH_ROWS = int(os.environ.get("LARDER_MATERIALIZE_BATCH_ROWS", "10000"))
# Fan-out: one partition (its own Celery task) per this many days of window, at most MAX; cut
# by `time` slices or `entity` hash buckets (API/CLI can choose per call; docs/materialization.md).
LARDER_MATERIALIZE_PARTITION_DAYS = float(os.environ.get("LARDER_MATERIALIZE_PARTITION_DAYS", "30"))
LARDER_MATERIALIZE_PARTITION_BY = os.environ.get("LARDER_MATERIALIZE_PARTITION_BY", "time")
LARDER_MATERIALIZE_MAX_PARTITIONS = int(os.environ.get("LARDER_MATERIALIZE_MAX_PARTITIONS", "8"))
# A running partition reports progress (and its heartbeat) this often; with no heartbeat for
# STALE seconds it is presumed dead and taken over; a partition never claimed REQUEUE
# seconds after its job was made is queued again (a lost message).
LARDER_MATERIALIZE_PROGRESS_SECONDS = float(os.environ.get("LARDER_MATERIALIZE_PROGRESS_SECONDS", "1"))
LARDER_MATERIALIZE_STALE_SECONDS = float(os.environ.get("LARDER_MATERIALIZE_STALE_SECONDS", "60"))
LARDER_MATERIALIZE_REQUEUE_SECONDS = float(os.environ.get("LARDER_MATERIALIZE_REQUEUE_SECONDS", "300"))
# An unreachable online store is retried this many times, with backoff 2, 4, 8... s (capped).
LARDER_MATERIALIZE_MAX_RETRIES = int(os.environ.get("LARDER_MATERIALIZE_MAX_RETRIES", "5"))
LARDER_MATERIALIZE_RETRY_MAX_SECONDS = float(os.environ.get("LARDER_MATERIALIZE_RETRY_MAX_SECONDS", "60"))
# Tests only (read only under LARDER_TESTING): every partition waits this long first.
LARDER_MATERIALIZE_TEST_DELAY_SECONDS = (
    float(os.environ.get("LARDER_MATERIALIZE_TEST_DELAY_SECONDS", "0")) if env_bool("LARDER_TESTING", False) else 0.0
)
# Failed scheduled jobs: a log line and a banner always; a JSON POST here too when set.
LARDER_ALERT_WEBHOOK_URL = os.environ.get("LARDER_ALERT_WEBHOOK_URL", "")

# --- Historical retrieval (serving/historical, docs/api.md) ------------------------------
# More entity rows than this run as a Celery job (202 + job URL) instead of in the request.
LARDER_HISTORICAL_ASYNC_ROWS = int(os.environ.get("LARDER_HISTORICAL_ASYNC_ROWS", "100000"))
# A job's result (LARDER_DATA_DIR/results/<id>.parquet) is kept this long after it finishes.
LARDER_HISTORICAL_RESULT_TTL_HOURS = float(os.environ.get("LARDER_HISTORICAL_RESULT_TTL_HOURS", "24"))
# A job joins its entity rows in chunks of this many rows (progress, bounded memory).
LARDER_HISTORICAL_CHUNK_ROWS = int(os.environ.get("LARDER_HISTORICAL_CHUNK_ROWS", "250000"))
# entity_sql (postgres sources): the query's statement timeout, and the most rows it may return.
LARDER_ENTITY_SQL_TIMEOUT_SECONDS = float(os.environ.get("LARDER_ENTITY_SQL_TIMEOUT_SECONDS", "60"))
LARDER_ENTITY_SQL_MAX_ROWS = int(os.environ.get("LARDER_ENTITY_SQL_MAX_ROWS", "10000000"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LARDER_LOG_LEVEL", "INFO")},
}

"""Flowbill settings, read from the environment (12-factor).

Every variable is listed in `.env.example` and in the README. With no variables set,
Flowbill runs on embedded defaults: SQLite under `var/`, tasks in-process, emails written
as `.eml` files under `var/mail/`.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from billing import schedule as billing_schedule
from config.runtime.broker import (
    EMBEDDED_BROKER_URL,
    celery_broker_url,
    embedded_broker_transport_options,
)
from core.task_options import LONGEST_HARD_TIME_LIMIT, broker_visibility_timeout
from idempotency import schedule as idempotency_schedule
from usage import schedule as usage_schedule
from webhooks import schedule as webhooks_schedule

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("FLOWBILL_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)

# Development-only values: used only while DEBUG is on, refused otherwise.
_DEV_SECRET_KEY = "flowbill-dev-only-secret-key-not-for-production-0123456789abcdef"  # noqa: S105
_DEV_ENCRYPTION_KEY = "Zmxvd2JpbGwtZGV2LW9ubHktZmVybmV0LWtleS0wMDA="

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or (_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG=0")

FLOWBILL_ENCRYPTION_KEYS = env_list("FLOWBILL_ENCRYPTION_KEYS") or (
    [_DEV_ENCRYPTION_KEY] if DEBUG else []
)
if not FLOWBILL_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("FLOWBILL_ENCRYPTION_KEYS is required when DJANGO_DEBUG=0")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS") or (
    ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# Hosts an upstream account's base URL may point at (its credentials are sent there), per
# provider; `host` allows any port, `host:port` one. Debug adds the local simulator's hosts.
_LOCAL_UPSTREAM_HOSTS = ["127.0.0.1", "localhost"] if DEBUG else []
FLOWBILL_UPSTREAM_ALLOWED_HOSTS = {
    "ipfoxy": [
        *env_list("FLOWBILL_UPSTREAM_ALLOWED_HOSTS_IPFOXY", "apis.ipfoxy.com"),
        *_LOCAL_UPSTREAM_HOSTS,
    ],
    "bytesflows": [
        *env_list("FLOWBILL_UPSTREAM_ALLOWED_HOSTS_BYTESFLOWS", "api.bytesflows.com"),
        *_LOCAL_UPSTREAM_HOSTS,
    ],
}

# Webhook endpoints: outside DEBUG only https to hosts whose every address is public (see
# webhooks/urls_check.py and core/http.py). A receiver on a private network (tests, a local
# setup) needs this explicit opt-in, which also allows http://; DEBUG does not imply it.
# Never set it in production.
FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS = env_bool("FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS", False)

INSTALLED_APPS = [
    "config.admin.apps.FlowbillAdminConfig",  # django.contrib.admin with the Flowbill site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",  # admin login lockout (AXES_* below)
    "accounts",
    "usage",
    "billing",
    "webhooks",
    "idempotency",
    "config.runtime",  # `manage.py serve`: web, worker and beat on the embedded broker
]

MIDDLEWARE = [
    # First, so it wraps every other: database/broker down -> 503, never a stack trace.
    "core.middleware.ServiceUnavailableMiddleware",
    # /healthz and /readyz, answered before the host check and the HTTPS redirect.
    "config.health.HealthProbeMiddleware",
    # Request code from here on: an unscoped tenant query raises (accounts.tenancy).
    "accounts.tenancy.TenancyRequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused for a locked-out username and IP into a 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'flowbill.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A busy timeout lets the in-process tasks and the dev server share the file.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # SQLite creates the file but not its folder: a fresh clone has no var/ yet.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# The lockout backend runs first: a username locked out from an address is refused before
# its password is even checked (django-axes, attempts stored in the database).
AUTHENTICATION_BACKENDS = [
    "accounts.auth_backends.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("FLOWBILL_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("FLOWBILL_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # one user from one address
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    # Django's file system storage, writing through a temporary file and a rename: a
    # process killed mid-PDF never leaves a truncated file under the final name.
    "default": {"BACKEND": "core.files.AtomicFileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Email: `.eml` files under var/mail/ by default, SMTP when EMAIL_HOST is set.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "30"))
else:
    EMAIL_BACKEND = "core.mail.EmlFileBackend"
    EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "billing@flowbill.localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Domains the platform's SMTP may send for (SPF/DKIM in place), comma-separated: a reseller's
# `sender_email` on one of them is the From of its emails; any other is only the Reply-To
# (accounts/email_identity.py). Every reseller may use a domain listed here: a reseller's own
# domain goes on that reseller (admin: verified sender domain, set by the superuser).
FLOWBILL_SENDER_DOMAINS = [d.lower() for d in env_list("FLOWBILL_SENDER_DOMAINS")]

# Celery: with no broker configured, tasks run in-process (eagerly), unless the embedded
# runtime is on (`manage.py serve` sets FLOWBILL_EMBEDDED_RUNTIME=1 for the web server, worker
# and beat it starts): then they are queued to kombu's filesystem transport under
# var/broker/ (config/runtime/broker.py). A configured broker always wins.
FLOWBILL_EMBEDDED_RUNTIME = env_bool("FLOWBILL_EMBEDDED_RUNTIME", False)
FLOWBILL_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = celery_broker_url(
    configured=os.environ.get("CELERY_BROKER_URL", ""), embedded=FLOWBILL_EMBEDDED_RUNTIME
)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Two queues: `webhooks` (every `webhooks.tasks.*` task: sends to tenants' URLs, which may
# hang up to their deadline) and `celery` (everything else: syncs, invoicing, email). In
# production each has its own worker (docker-compose.yml: `worker -Q celery`,
# `webhooks-worker -Q webhooks`), so receivers that never answer cannot hold the workers of
# the other work; a worker started without -Q consumes both (development).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (
    Queue("celery", Exchange("celery"), routing_key="celery"),
    Queue("webhooks", Exchange("webhooks"), routing_key="webhooks"),
)
CELERY_TASK_ROUTES = {"webhooks.tasks.*": {"queue": "webhooks"}}
# Every task declares its own time limits (core/task_options.py `*_TIME_LIMITS`); these are the
# fallback for any other (Celery's built-in tasks), enforced by the prefork pool.
CELERY_TASK_SOFT_TIME_LIMIT = 600
CELERY_TASK_TIME_LIMIT = 720
# Redis hands a message its worker never acknowledged (the worker was killed) to another
# worker after this many seconds: by default the longest task hard time limit plus 5 minutes
# (2100 s), instead of kombu's hour. A value not above the longest hard limit is refused.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": broker_visibility_timeout(
        os.environ.get("FLOWBILL_BROKER_VISIBILITY_TIMEOUT"),
        longest_hard_limit=max(LONGEST_HARD_TIME_LIMIT, CELERY_TASK_TIME_LIMIT),
    ),
}
if CELERY_BROKER_URL == EMBEDDED_BROKER_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS.update(embedded_broker_transport_options(FLOWBILL_BROKER_DIR))
    # One worker and nobody to ask it anything: no remote-control (pidbox) queue to poll.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_BEAT_SCHEDULE = {
    **usage_schedule.BEAT_SCHEDULE,
    **billing_schedule.BEAT_SCHEDULE,
    **webhooks_schedule.BEAT_SCHEDULE,
    **idempotency_schedule.BEAT_SCHEDULE,
}

# Celery tasks queued with `customer_id=` after a sync changed that customer's usage
# (usage/services/followups.py): usage knows them by name only, as it sits below billing.
FLOWBILL_AFTER_SYNC_TASKS: list[str] = [
    "usage.tasks.usage_alerts_check_task",
    "billing.tasks.invoice_drafts_refresh_task",
]
# Queued with `upstream_account_id=` after a traffic refresh stored that upstream account's
# remaining traffic (usage.services.followups), by name like the list above.
FLOWBILL_AFTER_TRAFFIC_REFRESH_TASKS: list[str] = [
    "billing.tasks.traffic_policy_apply_all_task",
]

# Redis for cross-worker locks and the upstream request budget; in-process when unset.
REDIS_URL = os.environ.get("REDIS_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else ""
)

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "accounts.api.schema.FlowbillAutoSchema",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        # Per API key (or staff session), and failed key attempts per client IP.
        "api_key": "1200/min",
        "api_auth_failure": "30/min",
    },
    # Clients are told apart by the peer address; X-Forwarded-For is not trusted (gunicorn
    # faces clients directly). Behind N reverse proxies, set this to N.
    "NUM_PROXIES": 0,
    "DEFAULT_PAGINATION_CLASS": "accounts.api.pagination.ApiPagination",
    "PAGE_SIZE": 50,
    # JSON only, with a nesting limit (config/parsers.py): a deeply nested body is a 400.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Flowbill API",
    "DESCRIPTION": (
        "Billing API for rotating-proxy resellers. Authenticate with "
        "`Authorization: Api-Key <key>`: reseller keys use `/api/v1/reseller/`, customer "
        "keys the other `/api/v1/` endpoints. Errors are `{code, message, extra}`."
    ),
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "accounts.api.schema.forbid_unknown_request_fields",
        "idempotency.schema.add_idempotency_key_header",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ErrorCodeEnum": "core.errors.error_code_choices",
        "CustomerStatusEnum": "accounts.models.Customer.Status",
        "SubAccountStatusEnum": "accounts.models.SubAccount.Status",
        "ProviderEnum": "accounts.models.Provider",
        "ApiKeyScopeEnum": "accounts.models.ApiKey.Scope",
        "SyncRunStatusEnum": "usage.models.SyncRun.Status",
        "SyncRunKindEnum": "usage.models.SyncRun.Kind",
        "UsageAlertRuleKindEnum": "usage.models.UsageAlertRule.Kind",
        "WebhookDeliveryStatusEnum": "webhooks.models.WebhookDelivery.Status",
        "WebhookEventTypeEnum": "webhooks.catalogue.EVENT_TYPE_CHOICES",
        "UpstreamWriteStatusEnum": "usage.models.UpstreamWriteStatus",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Production hardening: on whenever DEBUG is off (`manage.py check --deploy` is clean).
if not DEBUG:
    # Trust `X-Forwarded-Proto` only behind a proxy that sets it (and strips a client's own):
    # with gunicorn exposed directly, any client could claim https.
    if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # a line per startup and per login otherwise
    },
}
if CELERY_TASK_ALWAYS_EAGER:
    # In-process tasks: a line per task (and kombu's note about the absent broker) is noise.
    LOGGING["loggers"].update(
        {"celery.app.trace": {"level": "WARNING"}, "kombu.connection": {"level": "ERROR"}}
    )

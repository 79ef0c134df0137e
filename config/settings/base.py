"""Settings shared by every environment. Everything that varies is read from the environment."""

from pathlib import Path

from config.env import (
    DEFAULT_DATABASE_URL,
    DEFAULT_GATEWAY_URL,
    DEFAULT_REDIS_URL,
    DEFAULT_REPLICA_URL,
    BadEnvironment,
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
)
from shop.techniques import connection_pooling

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "insecure-local-development-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    # Swagger UI's and ReDoc's files, served by the app itself: /api/docs/ works offline.
    "drf_spectacular_sidecar",
    "shop",
    "catalog",
    "orders",
]

MIDDLEWARE = [
    # Outermost: every error under /api/ leaves as JSON, whichever layer answered it.
    "shop.api_errors_middleware.ApiErrorMiddleware",
    # Counts every query of the request, session and auth included.
    "shop.perf_headers.QueryCostMiddleware",
    "shop.perf_headers.PerfToggleMiddleware",
    # Inside the toggle header's scope, so its retry on the primary runs on the same side and
    # is counted above; outside sessions and authentication, so their reads are routed too.
    "shop.techniques.read_replica.Middleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Django's, except that an API request with a body is not redirected to add a slash.
    "shop.api_errors_middleware.CommonMiddleware",
    # Its process_view knows the view (and so its body limit) and runs before the CSRF check,
    # the first to read a form body.
    "shop.api_errors_middleware.BodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# "default" is the primary; "replica" is the streaming standby made by `pg_basebackup -R`.
# Which reads go to the replica is the read_replica technique's decision (shop.db_router).
DATABASES = {
    "default": database_from_url(env_str("DATABASE_URL", DEFAULT_DATABASE_URL)),
    "replica": database_from_url(env_str("DATABASE_REPLICA_URL", DEFAULT_REPLICA_URL)),
}
for _db in DATABASES.values():
    # Bounds PostgreSQL enforces on every session (docs/techniques/short_transactions.md): a
    # statement running longer is cancelled, and a session that sits in an open transaction
    # doing nothing (a request stuck on an outside call while it holds row locks) is ended,
    # which releases its locks. 0 turns either off. Sent as startup options, so they hold
    # from the first statement; the seed lifts them for its own long transaction.
    _db["OPTIONS"].setdefault(
        "options",
        f"-c statement_timeout={env_int('DB_STATEMENT_TIMEOUT_MS', 30000)}"
        f" -c idle_in_transaction_session_timeout={env_int('DB_IDLE_IN_TRANSACTION_TIMEOUT_MS', 10000)}",
    )
# A psycopg pool per process (PERF_TOGGLES=connection_pooling=on, the default), or a connection
# per request kept DB_CONN_MAX_AGE seconds (off); DB_POOL_* size the pool.
connection_pooling.configure(DATABASES)
# A replica that does not answer costs a request this long at most before its reads go to the
# primary (a refused connection fails at once). libpq's minimum is 2 s.
DATABASES["replica"]["OPTIONS"].setdefault(
    "connect_timeout", env_int("DATABASE_REPLICA_CONNECT_TIMEOUT", 2)
)
DATABASE_ROUTERS = ["shop.db_router.DatabaseRouter"]

# The read_replica technique (docs/techniques/read_replica.md).
READ_REPLICA_DATABASE = "replica"  # the alias reads may go to; None: every read to the primary
# Over this lag, reads go to the primary. Measured on the replica, at most once per
# READ_REPLICA_PROBE_SECONDS per process.
READ_REPLICA_MAX_LAG_SECONDS = env_float("READ_REPLICA_MAX_LAG_SECONDS", 1.0)
READ_REPLICA_PROBE_SECONDS = env_float("READ_REPLICA_PROBE_SECONDS", 1.0)
# After a failed probe the replica is left alone this long: one failed connect per period.
READ_REPLICA_RETRY_SECONDS = env_float("READ_REPLICA_RETRY_SECONDS", 5.0)
# How long a user's requests read the primary after they wrote. It must cover the lag bound
# plus the probe's age (a replica within 1 s, probed up to 1 s ago, has every write older than
# 2 s); 5 s leaves room. 0 turns read-your-writes across requests off.
READ_REPLICA_PIN_SECONDS = env_int("READ_REPLICA_PIN_SECONDS", 5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", DEFAULT_REDIS_URL)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # One key space per database: servers of two databases sharing a Redis (a bench run on
        # a database of its own) never read, nor clear, each other's entries.
        "KEY_PREFIX": f"perfshop-{DATABASES['default']['NAME']}",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so an anonymous request gets 401 with a WWW-Authenticate header.
        "shop.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "shop.api_schema.AutoSchema",
    "EXCEPTION_HANDLER": "shop.api_errors.exception_handler",
    # DRF's three parsers, with its JSONParser swapped for one that refuses deep nesting.
    "DEFAULT_PARSER_CLASSES": [
        "shop.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Errors in a list of objects come keyed by position, only for the entries that failed:
    # {"items": {"2": {"sku": ["..."]}}}. The services report their own errors the same way.
    "LIST_SERIALIZER_ERRORS_AS_DICT": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "PerfShop API",
    "DESCRIPTION": (
        "A reference order service for backend and database performance techniques. "
        "A request body may be up to 2.5 MB (the product import: 64 MB); a larger one is "
        "refused with 413 before it is read. Every error is JSON: "
        '`{"detail": "...", "code": "..."}`, or field messages for bad input.'
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # From the drf-spectacular-sidecar package, pinned with the project, instead of a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "orders.tasks.send_order_confirmation": {"queue": "email"},
}
# The order event log's partitions for the months ahead (table_partitioning), made daily.
CELERY_BEAT_SCHEDULE = {
    "event-partitions-ahead": {"task": "orders.tasks.event_partitions_ahead", "schedule": 86400},
}
CELERY_TASK_SERIALIZER = "json"
# The transactional_outbox relay (`manage.py outbox_relay`): rows claimed per transaction, the
# longest it sleeps with nothing to do (a NOTIFY at each commit wakes it sooner), the longest
# back-off while the broker is down, and how long sent rows are kept (pruned by the relay).
TRANSACTIONAL_OUTBOX_BATCH = env_int("TRANSACTIONAL_OUTBOX_BATCH", 100)
TRANSACTIONAL_OUTBOX_POLL_S = env_float("TRANSACTIONAL_OUTBOX_POLL_S", 1.0)
TRANSACTIONAL_OUTBOX_BACKOFF_MAX_S = env_float("TRANSACTIONAL_OUTBOX_BACKOFF_MAX_S", 5.0)
TRANSACTIONAL_OUTBOX_NOTIFY = env_bool("TRANSACTIONAL_OUTBOX_NOTIFY", True)
TRANSACTIONAL_OUTBOX_KEEP_SENT_HOURS = env_float("TRANSACTIONAL_OUTBOX_KEEP_SENT_HOURS", 24.0)
TRANSACTIONAL_OUTBOX_PRUNE_EVERY_S = env_float("TRANSACTIONAL_OUTBOX_PRUNE_EVERY_S", 3600.0)
CELERY_ACCEPT_CONTENT = ["json"]

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = "orders@perfshop.local"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Whether a request may flip techniques with the X-Perf-Toggles header. Never in production.
PERF_ALLOW_OVERRIDE = env_bool("PERF_ALLOW_OVERRIDE", True)
# Whether responses carry X-DB-Queries and Server-Timing (shop.perf_headers.QueryCostMiddleware).
# Never in production: they show any client what each request costs the database.
PERF_COST_HEADERS = env_bool("PERF_COST_HEADERS", True)

# Limits on one order, checked before anything is written.
ORDER_MAX_LINES = env_int("ORDER_MAX_LINES", 100)
ORDER_MAX_QUANTITY_PER_LINE = env_int("ORDER_MAX_QUANTITY_PER_LINE", 1000)

# How the inventory_locking technique takes stock when it is on (shop/techniques/inventory_locking.py,
# docs/techniques/inventory_locking.md explains each).
INVENTORY_LOCKING_STRATEGIES = (
    "conditional_update",
    "select_for_update",
    "optimistic",
    "serializable",
    "redis_lock",
)
INVENTORY_LOCKING_STRATEGY = env_str("INVENTORY_LOCKING_STRATEGY", "conditional_update")
if INVENTORY_LOCKING_STRATEGY not in INVENTORY_LOCKING_STRATEGIES:
    raise BadEnvironment(
        f"INVENTORY_LOCKING_STRATEGY={INVENTORY_LOCKING_STRATEGY!r} is not one of "
        + ", ".join(INVENTORY_LOCKING_STRATEGIES)
    )
# Attempts of an optimistic write or a SERIALIZABLE transaction before the order gets a 409. An
# attempt fails only when another order changed the same stock after it read, so with one unit
# each an attempt can fail at most once per unit sold meanwhile.
INVENTORY_LOCKING_ATTEMPTS = env_int("INVENTORY_LOCKING_ATTEMPTS", 20)
# The Redis lock: how long it lives unless released, and how long an order waits for it.
INVENTORY_LOCKING_LOCK_TTL_MS = env_int("INVENTORY_LOCKING_LOCK_TTL_MS", 5000)
INVENTORY_LOCKING_LOCK_WAIT_MS = env_int("INVENTORY_LOCKING_LOCK_WAIT_MS", 10000)
# The payment gateway (shop/payment_gateway.py). Locally it is the stub the local stack starts
# (shop/payment_gateway_stub.py) on PERFSHOP_GATEWAY_PORT; its latency and failure rate are the
# stub's own settings, read by `manage.py payment_gateway_stub`.
PAYMENT_GATEWAY_URL = env_str("PAYMENT_GATEWAY_URL", DEFAULT_GATEWAY_URL)
# Connect and read timeout of every gateway call: longer than the gateway's slowest normal
# answer, well under DB_IDLE_IN_TRANSACTION_TIMEOUT_MS, so the naive path's open transaction
# is ended by this timeout first.
PAYMENT_GATEWAY_TIMEOUT_S = env_float("PAYMENT_GATEWAY_TIMEOUT_S", 3.0)
# 0 by default, so the other techniques' order figures are not a gateway's wait; the
# short_transactions bench and tests start stubs of their own latency (200 ms by default).
PAYMENT_GATEWAY_STUB_LATENCY_MS = env_int("PAYMENT_GATEWAY_STUB_LATENCY_MS", 0)
PAYMENT_GATEWAY_STUB_FAILURE_RATE = env_float("PAYMENT_GATEWAY_STUB_FAILURE_RATE", 0.0)

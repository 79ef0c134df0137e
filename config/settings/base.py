"""Settings shared by every environment. Everything that varies is read from the environment."""

from pathlib import Path

from kombu import Exchange, Queue

from config.env import (
    DEFAULT_BROKER_URL,
    DEFAULT_CARRIER_ECONOMY_URL,
    DEFAULT_CARRIER_NATIONAL_URL,
    DEFAULT_CARRIER_RAPID_URL,
    DEFAULT_DATABASE_URL,
    DEFAULT_GATEWAY_URL,
    DEFAULT_REDIS_URL,
    DEFAULT_REPLICA_URL,
    LOCAL_SMTP_PORT,
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
    # Inside the toggle header's scope; outside everything that writes a body or headers, so
    # it compresses the finished response. Outside http_caching in particular: the validators
    # name the representation before its encoding (weak ETags), and a 304 has no body to
    # compress, only the Vary: Accept-Encoding that its 200 would have had.
    "shop.techniques.compression.Middleware",
    # Inside the toggle header's scope; before sessions and authentication, so a refused login
    # or order costs one Redis round trip and no query (it identifies the client by its IP or
    # by a hash of its token, without looking the token up). Before backpressure: one client's
    # flood is answered 429 for that client, not counted as the shop's overload.
    "shop.techniques.rate_limiting.Middleware",
    # Inside the toggle header's scope; before sessions, authentication and the replica
    # routing, so an order refused for an overload costs a broker round trip and no query.
    "shop.techniques.backpressure.Middleware",
    # Inside the toggle header's scope, so its retry on the primary runs on the same side and
    # is counted above; outside sessions and authentication, so their reads are routed too.
    "shop.techniques.read_replica.Middleware",
    "django.middleware.security.SecurityMiddleware",
    # Django's SessionMiddleware, with the store (PostgreSQL or Redis) chosen per request by
    # the session_store technique, so inside the toggle header's scope; and a session Redis
    # that is down answered with a 503, not a 500 (shop/techniques/session_store.py).
    "shop.techniques.session_store.Middleware",
    # Django's, except that an API request with a body is not redirected to add a slash.
    "shop.api_errors_middleware.CommonMiddleware",
    # Its process_view knows the view (and so its body limit) and runs before the CSRF check,
    # the first to read a form body.
    "shop.api_errors_middleware.BodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost: its process_view runs last, once the URL is resolved, just before the view,
    # so a 304 skips the view (DRF's authentication and its token query included) and costs
    # what the middleware above does for a GET (no query) plus one Redis round trip.
    "shop.techniques.http_caching.Middleware",
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
# A cache Redis that hangs instead of refusing costs a request at most this long per call, then
# the outage path (shop/cache.py: a miss, a logged warning); without it a hung server would hold
# a request, and write_through's row locks, until the kernel gave up on the connection.
CACHE_REDIS_OPTIONS = {
    "socket_connect_timeout": env_float("CACHE_REDIS_TIMEOUT_S", 1.0),
    "socket_timeout": env_float("CACHE_REDIS_TIMEOUT_S", 1.0),
}
CACHES = {
    "default": {
        "BACKEND": "shop.cache.RedisCache",
        "LOCATION": REDIS_URL,
        # One key space per database: servers of two databases sharing a Redis (a bench run on
        # a database of its own) never read, nor clear, each other's entries.
        "KEY_PREFIX": f"perfshop-{DATABASES['default']['NAME']}",
        "OPTIONS": CACHE_REDIS_OPTIONS,
    }
}
# Sessions (the session_store technique): in PostgreSQL when it is off, in the `sessions`
# cache alias when it is on, a Redis of their own (by default the cache's server, another
# database): flushing or evicting the cache must not log everyone out. SESSION_ENGINE names
# the technique's module, so a session made outside a request (the test client's login,
# `manage.py clearsessions`) goes to the same store as the middleware's.
SESSION_REDIS_URL = env_str(
    "SESSION_REDIS_URL",
    (REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") > 2 else REDIS_URL) + "/1",
)
CACHES["sessions"] = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": SESSION_REDIS_URL,
    "KEY_PREFIX": f"perfshop-{DATABASES['default']['NAME']}",
    # A Redis that does not answer costs a request this long, then the documented outage.
    "OPTIONS": {
        "socket_connect_timeout": env_float("SESSION_REDIS_TIMEOUT_S", 0.5),
        "socket_timeout": env_float("SESSION_REDIS_TIMEOUT_S", 0.5),
    },
}
SESSION_ENGINE = "shop.techniques.session_store"
SESSION_CACHE_ALIAS = "sessions"
# Moves every cached catalog key at once (shop/cache.py); each payload also has a version of
# its own, next to the code that builds it.
CACHE_SCHEMA_VERSION = env_int("CACHE_SCHEMA_VERSION", 1)
# The stampede_protection technique (shop/techniques/stampede_protection.py). The fill lock
# lives longer than any cached page takes to build (the category page: well under 1 s at
# medium), so a slow fill is never joined by a second; a holder that died blocks its key for
# at most this long. Waiters poll every STAMPEDE_POLL_S for up to STAMPEDE_WAIT_S, then build
# the page themselves. A stale entry is served for STAMPEDE_STALE_S past its TTL while one
# request refreshes it; TTLs are spread over their last STAMPEDE_JITTER fraction.
STAMPEDE_LOCK_TTL_S = env_float("STAMPEDE_LOCK_TTL_S", 5.0)
STAMPEDE_WAIT_S = env_float("STAMPEDE_WAIT_S", 2.0)
STAMPEDE_POLL_S = env_float("STAMPEDE_POLL_S", 0.025)
STAMPEDE_STALE_S = env_float("STAMPEDE_STALE_S", 30.0)
STAMPEDE_JITTER = env_float("STAMPEDE_JITTER", 0.1)
# local_cache: how long each hot lookup stays in a process's own memory (L1). Each is the
# staleness bound of that lookup in the other processes: a write evicts its own process's L1
# and Redis at once, the others' L1 only when this runs out (docs/techniques/local_cache.md).
# The token's is how long a revoked token keeps working on the other workers.
LOCAL_CACHE_TOKEN_TTL_S = env_float("LOCAL_CACHE_TOKEN_TTL_S", 5.0)
LOCAL_CACHE_CATEGORY_TTL_S = env_float("LOCAL_CACHE_CATEGORY_TTL_S", 30.0)
LOCAL_CACHE_RATES_TTL_S = env_float("LOCAL_CACHE_RATES_TTL_S", 60.0)
# Where the shop ships from: its own country's shipping zone is `domestic` (orders/rates.py).
SHOP_COUNTRY = env_str("SHOP_COUNTRY", "DE")

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

# Celery (docs/queues.md). The broker is a Redis of its own (PERFSHOP_BROKER_PORT), not the cache:
# an outage of one is not an outage of the other, and evicting cache keys never drops a task.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", DEFAULT_BROKER_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = False
# Every task is a shop.celery_tasks.ShopTask (config/celery_app.py): transient errors are retried
# with exponential backoff and jitter, a permanent one is not, and a task that fails for good is
# recorded as a shop.models.FailedTask (`manage.py failed_tasks`).
TASK_MAX_RETRIES = env_int("TASK_MAX_RETRIES", 5)
TASK_RETRY_BACKOFF_S = env_float("TASK_RETRY_BACKOFF_S", 2.0)  # 1st retry after 1-2 s, then x2
TASK_RETRY_BACKOFF_MAX_S = env_float("TASK_RETRY_BACKOFF_MAX_S", 300.0)
# The queues, declared (not made on first use: a route naming a queue that is not here is an
# error when the task is sent, not a queue no worker reads) and each read by its own worker
# (Procfile). A task goes to `default` unless CELERY_TASK_ROUTES names its queue.
CELERY_QUEUE_NAMES = ("default", "email", "inventory", "payment")
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name), routing_key=name) for name in CELERY_QUEUE_NAMES
)
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_TASK_DEFAULT_QUEUE = "default"
# Each kind of work on a queue of its own (async_tasks): a slow gateway fills `payment`, not
# the queue the confirmation emails wait in, and each queue gets the workers it needs.
CELERY_TASK_ROUTES = {
    "orders.tasks.capture_payment": {"queue": "payment"},
    "orders.tasks.record_stock_movements": {"queue": "inventory"},
    "orders.tasks.send_order_confirmation": {"queue": "email"},
}
# Acknowledge a message when its task has finished, not when a worker takes it: a worker that
# dies mid-task leaves it on the broker. One message reserved per worker process at a time, so a
# long task never sits behind another on a busy process while an idle one waits.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A pool process killed mid-task (SIGKILL, the OOM killer) sends its task again rather than
# dropping it. retry_on_worker_lost (Celery 5.6+) sends it as a retry that counts against
# TASK_MAX_RETRIES, so a message that kills its worker every time ends as a FailedTask instead
# of looping for ever; reject_on_worker_lost requeues it if that retry cannot be sent.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_RETRY_ON_WORKER_LOST = True
# A task stuck on a hung call is interrupted (SoftTimeLimitExceeded, which it may catch to clean
# up), then killed. Raise them per task (`@shared_task(soft_time_limit=...)`) for long work.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 90)
# Redis has no real acks: a message a worker took but has not acknowledged goes back on its queue
# once this many seconds have passed, whichever worker then restores it. Longer than any task
# (with its countdown: a retry waiting for its ETA is unacknowledged too), or a slow task runs
# twice; it is also how long a task of a worker killed outright (kill -9 of the main process)
# waits to run again. Tests of that case set a short one (CELERY_VISIBILITY_TIMEOUT). Workers look
# for such messages every tenth of it (at most a minute apart; kombu's default, 10 s x a throttle
# of 10, is about 100 s whatever the timeout), one ZRANGE each time.
_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _VISIBILITY_TIMEOUT,
    "unacked_restore_interval": max(1, min(60, _VISIBILITY_TIMEOUT // 10)),
    "unacked_restore_throttle": 1,
}
# Mail servers (and the providers in front of them) throttle senders: the email queue's tasks
# are held to this rate per worker (Celery's token bucket; "50/s", "600/m"; empty: no limit).
EMAIL_TASK_RATE_LIMIT = env_str("EMAIL_TASK_RATE_LIMIT", "50/s") or None
CELERY_TASK_ANNOTATIONS = {
    task: {"rate_limit": EMAIL_TASK_RATE_LIMIT}
    for task, route in CELERY_TASK_ROUTES.items()
    if route["queue"] == "email"
}
# The write_behind technique (docs/techniques/write_behind.md): product views counted in Redis
# and added to PostgreSQL in bulk every WRITE_BEHIND_FLUSH_EVERY_S (beat, below). Until then
# the counts are data that exist nowhere else, so they wait in a Redis that keeps what it is
# given: the broker's by default (append-only file, fsync each second, no eviction), not the
# cache's, which keeps nothing across a restart and may evict. A view whose Redis does not
# answer within WRITE_BEHIND_REDIS_TIMEOUT_S is counted in PostgreSQL instead, and so is every
# view for the WRITE_BEHIND_RETRY_S after that. A broker that is not Redis (RabbitMQ,
# docs/queues.md) leaves the cache's as the default: set this to a Redis that persists.
WRITE_BEHIND_REDIS_URL = env_str(
    "WRITE_BEHIND_REDIS_URL",
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else REDIS_URL,
)
WRITE_BEHIND_REDIS_TIMEOUT_S = env_float("WRITE_BEHIND_REDIS_TIMEOUT_S", 0.25)
WRITE_BEHIND_RETRY_S = env_float("WRITE_BEHIND_RETRY_S", 5.0)
WRITE_BEHIND_KEY_PREFIX = env_str(
    "WRITE_BEHIND_KEY_PREFIX", f"perfshop-{DATABASES['default']['NAME']}:views"
)
# Also the most views a Redis that dies without its data can lose (plus the fsync second).
WRITE_BEHIND_FLUSH_EVERY_S = env_float("WRITE_BEHIND_FLUSH_EVERY_S", 10.0)
# Ledger rows (catalog.ViewCountFlush) older than this are pruned by the flush.
WRITE_BEHIND_LEDGER_KEEP_DAYS = env_int("WRITE_BEHIND_LEDGER_KEEP_DAYS", 7)

# The sales report's read model (materialized_view) is refreshed every SALES_REPORT_REFRESH_S: a
# report with it on is at most this plus one refresh's duration behind the orders
# (`manage.py refresh_sales_report` prints that duration).
SALES_REPORT_REFRESH_S = env_int("SALES_REPORT_REFRESH_S", 300)
# A refresh reads every revenue order, far more than a request's DB_STATEMENT_TIMEOUT_MS allows
# for at the large size: its statements and its task get this bound instead.
SALES_REPORT_REFRESH_TIMEOUT_S = env_int("SALES_REPORT_REFRESH_TIMEOUT_S", 600)

# Periodic tasks, sent by the `beat` process (Procfile) to the worker of their queue.
CELERY_BEAT_SCHEDULE = {
    # The order event log's partitions for the months ahead (table_partitioning), made daily.
    "event-partitions-ahead": {"task": "orders.tasks.event_partitions_ahead", "schedule": 86400},
    "refresh-sales-report": {
        "task": "orders.tasks.refresh_sales_report",
        "schedule": SALES_REPORT_REFRESH_S,
        # A refresh still waiting when the next is due is dropped: the next does its work.
        "options": {"expires": SALES_REPORT_REFRESH_S},
    },
    # The product view counts waiting in Redis, added to PostgreSQL (write_behind), on the
    # `default` queue. A tick no worker took within its own interval is dropped (expires): the
    # next one flushes the same views, so a stopped worker does not come back to a pile of them.
    "write-behind-flush": {
        "task": "catalog.tasks.write_behind_flush",
        "schedule": WRITE_BEHIND_FLUSH_EVERY_S,
        "options": {"expires": WRITE_BEHIND_FLUSH_EVERY_S},
    },
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
# The SMTP server when EMAIL_BACKEND is the smtp one: by default the local stack's SMTP sink
# (shop/smtp_sink.py), which keeps every message it receives under .stack/smtp/.
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", LOCAL_SMTP_PORT)
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0)
# The sink's time per message, as a distant provider's (`manage.py smtp_sink`, `devstack up`).
SMTP_SINK_DELAY_MS = env_float("SMTP_SINK_DELAY_MS", 0.0)
# Where `manage.py smtp_sink` writes the messages; empty: the local stack's .stack/smtp/mail.
SMTP_SINK_DIR = env_str("SMTP_SINK_DIR", "")
# The stock ledger's low-stock email (async_tasks' inventory work): sent when an order leaves a
# variant at or below the threshold; no address, no email.
LOW_STOCK_THRESHOLD = env_int("LOW_STOCK_THRESHOLD", 5)
LOW_STOCK_ALERT_EMAIL = env_str("LOW_STOCK_ALERT_EMAIL", "stock@perfshop.local")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs every request at INFO: three lines per shipping estimate (shop/carriers.py).
    "loggers": {"httpx": {"level": "WARNING"}},
}

# http_caching (shop/techniques/http_caching.py): "token", the validator from Redis that answers
# 304 before the view; "rendered", Django's ConditionalGetMiddleware in its place (the view
# runs, then its body is hashed), for the bench's comparison.
HTTP_CACHING_VALIDATOR = env_str("HTTP_CACHING_VALIDATOR", "token")
if HTTP_CACHING_VALIDATOR not in ("token", "rendered"):
    raise BadEnvironment(
        f"HTTP_CACHING_VALIDATOR={HTTP_CACHING_VALIDATOR!r} is not one of token, rendered"
    )

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

# backpressure (shop/techniques/backpressure.py): a new order is refused with a 503 while this
# many payment captures wait on the queue. The bound is the backlog the workers clear within
# the wait a customer accepts: BACKPRESSURE_MAX_DEPTH / BACKPRESSURE_DRAIN_PER_S seconds, which
# is also the longest Retry-After. Set the drain rate to what `manage.py bench --only
# backpressure` measures for your payment workers.
BACKPRESSURE_QUEUE = "payment"
BACKPRESSURE_PATHS = ["/api/orders/"]
BACKPRESSURE_MAX_DEPTH = env_int("BACKPRESSURE_MAX_DEPTH", 100)
BACKPRESSURE_DRAIN_PER_S = env_float("BACKPRESSURE_DRAIN_PER_S", 20.0)
# How long the depth check waits for a broker that does not answer before letting the order in.
BACKPRESSURE_BROKER_TIMEOUT_S = env_float("BACKPRESSURE_BROKER_TIMEOUT_S", 0.5)
# The shipping carriers asked for quotes (shop/carriers.py, the async_io technique), by name.
# Locally they are the stubs the local stack starts (shop/carrier_stub.py) on
# PERFSHOP_CARRIER_*_PORT, answering after CARRIER_STUB_LATENCIES_MS (one each, in this order).
SHIPPING_CARRIERS = {
    "rapid": env_str("CARRIER_RAPID_URL", DEFAULT_CARRIER_RAPID_URL),
    "national": env_str("CARRIER_NATIONAL_URL", DEFAULT_CARRIER_NATIONAL_URL),
    "economy": env_str("CARRIER_ECONOMY_URL", DEFAULT_CARRIER_ECONOMY_URL),
}
# Each carrier call's limit, connect to last byte: past it the carrier is listed as timed out
# and the answer goes out without its quote. Above the slowest stub's 300 ms.
CARRIER_TIMEOUT_S = env_float("CARRIER_TIMEOUT_S", 1.0)
try:
    CARRIER_STUB_LATENCIES_MS = [
        int(value) for value in env_list("CARRIER_STUB_LATENCIES_MS", ["100", "200", "300"])
    ]
except ValueError as exc:
    raise BadEnvironment(
        "CARRIER_STUB_LATENCIES_MS must be whole milliseconds, one per carrier: 100,200,300"
    ) from exc
if len(CARRIER_STUB_LATENCIES_MS) != len(SHIPPING_CARRIERS) or min(CARRIER_STUB_LATENCIES_MS) < 0:
    raise BadEnvironment(
        f"CARRIER_STUB_LATENCIES_MS needs {len(SHIPPING_CARRIERS)} values of 0 or more, "
        f"one per carrier ({', '.join(SHIPPING_CARRIERS)})"
    )
# The circuit_breaker technique (shop/techniques/circuit_breaker.py) around the gateway's
# charges. It opens after CIRCUIT_BREAKER_FAILURES failures (timeouts, refused connections,
# 5xx; a declined card is an answer, not a failure) within CIRCUIT_BREAKER_WINDOW_S of the
# first, stays open CIRCUIT_BREAKER_OPEN_S, then lets one probe through. 5 in 30 s: a handful
# of 3 s timeouts is enough evidence of an outage, and one flaky answer a minute is not.
CIRCUIT_BREAKER_FAILURES = env_int("CIRCUIT_BREAKER_FAILURES", 5)
CIRCUIT_BREAKER_WINDOW_S = env_float("CIRCUIT_BREAKER_WINDOW_S", 30.0)
CIRCUIT_BREAKER_OPEN_S = env_float("CIRCUIT_BREAKER_OPEN_S", 15.0)
# How long a probe's claim lasts: longer than one charge can take (its 1 s connect and 3 s
# read timeouts), so a slow probe is never joined by a second; short enough that a process
# that died mid-probe leaves the breaker half-open only this long.
CIRCUIT_BREAKER_PROBE_TTL_S = env_float("CIRCUIT_BREAKER_PROBE_TTL_S", 10.0)
# Where its state lives: one Redis shared by every process, so all of them see it open.
CIRCUIT_BREAKER_REDIS_URL = env_str("CIRCUIT_BREAKER_REDIS_URL", REDIS_URL)
CIRCUIT_BREAKER_REDIS_TIMEOUT_S = env_float("CIRCUIT_BREAKER_REDIS_TIMEOUT_S", 0.25)
CIRCUIT_BREAKER_KEY_PREFIX = env_str(
    "CIRCUIT_BREAKER_KEY_PREFIX", f"perfshop-{DATABASES['default']['NAME']}:circuit"
)
# rate_limiting (shop/techniques/rate_limiting.py): token buckets in Redis. A bucket holds up to
# CAPACITY requests (the burst a client may send at once) and refills at PER_MINUTE. Orders are
# limited per client (its token; its IP without one), logins per client IP: a
# customer places a few orders a minute at most, and a person typing a password logs in a few
# times; a script guessing passwords or replaying checkouts is what is refused.
RATE_LIMITING_ORDER_PATHS = ["/api/orders/"]
RATE_LIMITING_ORDERS_CAPACITY = env_int("RATE_LIMITING_ORDERS_CAPACITY", 10)
RATE_LIMITING_ORDERS_PER_MINUTE = env_float("RATE_LIMITING_ORDERS_PER_MINUTE", 10.0, positive=True)
# The token endpoint, DRF's browsable-API login and the admin's: every way to try a password.
RATE_LIMITING_LOGIN_PATHS = ["/api/auth/token/", "/api/auth/login/", "/admin/login/"]
RATE_LIMITING_LOGIN_CAPACITY = env_int("RATE_LIMITING_LOGIN_CAPACITY", 10)
RATE_LIMITING_LOGIN_PER_MINUTE = env_float("RATE_LIMITING_LOGIN_PER_MINUTE", 5.0, positive=True)
# The reverse proxies in front of the app that append to X-Forwarded-For (DRF's NUM_PROXIES):
# 0 trusts no header and limits by REMOTE_ADDR; behind one load balancer, 1.
RATE_LIMITING_NUM_PROXIES = env_int("RATE_LIMITING_NUM_PROXIES", 0)
# The buckets live in the cache's Redis (empty: CACHES["default"]), on a client of their own
# with short timeouts: a Redis that does not answer costs a login or an order this long before
# the outage policy applies (orders fail open, logins fail closed with a 503).
RATE_LIMITING_REDIS_URL = env_str("RATE_LIMITING_REDIS_URL", "")
RATE_LIMITING_REDIS_TIMEOUT_S = env_float("RATE_LIMITING_REDIS_TIMEOUT_S", 0.25)
# The Retry-After of a login refused because the limiter's Redis does not answer.
RATE_LIMITING_OUTAGE_RETRY_AFTER_S = env_int("RATE_LIMITING_OUTAGE_RETRY_AFTER_S", 5)

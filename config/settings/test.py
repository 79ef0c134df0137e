"""The test suite: real PostgreSQL and Redis, no debug toolbar, fast password hashing."""

import os

from kombu import Exchange, Queue

from config.env import DEFAULT_BROKER_URL, env_str
from config.settings.base import *  # noqa: F403
from config.settings.base import CACHE_REDIS_OPTIONS, CELERY_QUEUE_NAMES, DATABASES, REDIS_URL
from shop.techniques import connection_pooling

# A connection per thread, as the suite's transactions expect, whatever PERF_TOGGLES says: a pool
# would keep a connection the counting tests expect to see opened. The pool's own tests switch
# it on where they need it (connection_pooling.process_pool).
connection_pooling.configure(DATABASES, enabled=False)

# Each run gets its own test database, so two runs at once (two terminals, CI beside a
# developer) never create or drop each other's.
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
# The replica alias reads that test database through real streaming replication: CREATE
# DATABASE on the primary replicates, and Django's MIRROR only gives the alias the test
# database's NAME, keeping the replica's host and port (tests/techniques/test_read_replica.py
# checks it is the standby). It also keeps Django from creating or flushing a database on the
# read-only standby. A test reads the replica only if it lists it: `databases=["default",
# "replica"]` (tests/conftest.py); the others have READ_REPLICA_DATABASE = None.
DATABASES["replica"]["TEST"] = {"MIRROR": "default"}

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", "")

# This run's suffix (the pid) on its queue names and cache keys; a worker a test starts is
# given its starter's (tests/workers.py).
TEST_QUEUE_SUFFIX = env_str("TEST_QUEUE_SUFFIX", f"-{os.getpid()}")

# Tests use their own Redis database numbers, so a running `make serve` worker never
# picks up a test's task (it would look for rows in the wrong database).
_REDIS_BASE = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") > 2 else REDIS_URL
CACHES = {
    "default": {
        "BACKEND": "shop.cache.RedisCache",
        "LOCATION": env_str("TEST_CACHE_URL", f"{_REDIS_BASE}/14"),
        # This run's own prefix, so two runs at once never read each other's entries;
        # tests/conftest.py empties it before each test.
        "KEY_PREFIX": f"perfshop-test{TEST_QUEUE_SUFFIX}",
        "OPTIONS": CACHE_REDIS_OPTIONS,
    }
}
# Sessions (session_store on) in a database of their own, under this run's prefix too.
SESSION_REDIS_URL = env_str("TEST_SESSION_REDIS_URL", f"{_REDIS_BASE}/13")
CACHES["sessions"] = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": SESSION_REDIS_URL,
    "KEY_PREFIX": f"perfshop-test{TEST_QUEUE_SUFFIX}",
    "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
}
# The broker Redis (PERFSHOP_BROKER_PORT), as in development, on a database of its own. Celery
# reads CELERY_BROKER_URL from the environment before its setting, so the development broker that
# `devstack env` exports is dropped here (and from the workers this run starts).
os.environ.pop("CELERY_BROKER_URL", None)
CELERY_BROKER_URL = env_str("TEST_CELERY_BROKER_URL", f"{DEFAULT_BROKER_URL.rsplit('/', 1)[0]}/15")
# Queue names of this run only: a worker started by another run at the same time never takes
# this run's tasks. A worker a test starts (tests/workers.py) is given its starter's suffix,
# so the tasks it retries or sends on go to the same run's queues. They are declared like the
# project's (base.py), so CELERY_TASK_CREATE_MISSING_QUEUES stays off here too.
CELERY_TASK_DEFAULT_QUEUE = f"default{TEST_QUEUE_SUFFIX}"
CELERY_TASK_QUEUES = tuple(
    Queue(
        name + TEST_QUEUE_SUFFIX,
        Exchange(name + TEST_QUEUE_SUFFIX),
        routing_key=name + TEST_QUEUE_SUFFIX,
    )
    for name in CELERY_QUEUE_NAMES
)
CELERY_TASK_ROUTES = {
    task: {"queue": route["queue"] + TEST_QUEUE_SUFFIX}
    for task, route in CELERY_TASK_ROUTES.items()  # noqa: F405
}
# Tasks the queue tests send (tests/task_probes.py): they fail, retry or kill their process on
# request. The suite's workers import them; the project's never do.
CELERY_IMPORTS = ["tests.task_probes"]
# backpressure reads this run's payment queue.
BACKPRESSURE_QUEUE = f"payment{TEST_QUEUE_SUFFIX}"
# The breaker's state in this run's Redis database, under this run's name (a worker a test
# starts is given the suffix, so it shares the state): a run whose gateway is down never opens
# another run's breaker. tests/conftest.py closes it before each test.
CIRCUIT_BREAKER_REDIS_URL = CACHES["default"]["LOCATION"]
CIRCUIT_BREAKER_KEY_PREFIX = f"perfshop-test{TEST_QUEUE_SUFFIX}:circuit"
# The product view counts (write_behind) on this run's broker database, under this run's name:
# a subprocess the crash tests start is given the suffix and the broker, so it flushes the
# same counts.
WRITE_BEHIND_REDIS_URL = CELERY_BROKER_URL
WRITE_BEHIND_KEY_PREFIX = f"perfshop-test{TEST_QUEUE_SUFFIX}:views"

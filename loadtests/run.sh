#!/usr/bin/env bash
# `make loadtest`: a headless, time-bounded Locust run against the local PerfShop, with CSV
# results under loadtests/results/ (git-ignored). Start the app first (`make serve`, or
# `docker-compose up`) on a seeded database. Extra arguments go to locust.
#
#   LOADTEST_HOST (http://127.0.0.1:8000)  LOADTEST_USERS (20)  LOADTEST_SPAWN_RATE (5)
#   LOADTEST_RUN_TIME (60s)  LOCUST (.venv/bin/locust if present, else locust)
set -euo pipefail
cd "$(dirname "$0")/.."

host="${LOADTEST_HOST:-http://127.0.0.1:8000}"
if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
locust="${LOCUST:-}"
if [ -z "$locust" ]; then
    if [ -x .venv/bin/locust ]; then locust=.venv/bin/locust; else locust=locust; fi
fi

# Fail fast, with a hint, when nothing is listening (every request would just fail).
"$python" - "$host" <<'PY'
import sys
import urllib.error
import urllib.request

host = sys.argv[1].rstrip("/")
try:
    urllib.request.urlopen(f"{host}/api/products/", timeout=10)
except urllib.error.HTTPError:
    pass  # it answers; the load test reports what it answers
except (urllib.error.URLError, OSError) as exc:
    sys.exit(f"loadtest: {host} does not answer ({exc}); start the app with `make serve`")
PY

mkdir -p loadtests/results
exec "$locust" -f loadtests/locustfile.py --headless --host "$host" \
    --users "${LOADTEST_USERS:-20}" --spawn-rate "${LOADTEST_SPAWN_RATE:-5}" \
    --run-time "${LOADTEST_RUN_TIME:-60s}" \
    --csv loadtests/results/perfshop --only-summary "$@"

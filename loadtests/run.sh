#!/usr/bin/env bash
# `make loadtest`: a headless, time-bounded Locust run against the local PerfShop, with CSV
# results under loadtests/results/ (git-ignored). Start the app first (`make serve`, or
# `docker-compose up`) on a seeded database. Extra arguments go to locust.
#
#   LOADTEST_HOST (http://127.0.0.1:8000)  LOADTEST_USERS (20)  LOADTEST_SPAWN_RATE (5)
#   LOADTEST_RUN_TIME (60s)  LOCUST (.venv/bin/locust if present, else locust)
#   LOADTEST_SCENARIO (unset: the general shopper, loadtests/locustfile.py; a technique's name:
#   loadtests/scenarios/<name>.py)  LOADTEST_TOGGLE (on|off, default on: that technique's side)
set -euo pipefail
cd "$(dirname "$0")/.."

host="${LOADTEST_HOST:-http://127.0.0.1:8000}"
if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
locust="${LOCUST:-}"
if [ -z "$locust" ]; then
    if [ -x .venv/bin/locust ]; then locust=.venv/bin/locust; else locust=locust; fi
fi

# The general shopper, or one technique's scenario at one side.
scenario="${LOADTEST_SCENARIO:-}"
if [ -z "$scenario" ]; then
    locustfile=loadtests/locustfile.py
    results=loadtests/results/perfshop
else
    locustfile="loadtests/scenarios/${scenario}.py"
    if [[ ! "$scenario" =~ ^[a-z_]+$ || ! -f "$locustfile" ]]; then
        known=$(cd loadtests/scenarios && ls [a-z]*.py | sed 's/\.py$//' | tr '\n' ' ')
        echo "loadtest: no scenario '$scenario' (known: $known)" >&2
        exit 2
    fi
    toggle="${LOADTEST_TOGGLE:-on}"
    case "$toggle" in
        on|off) ;;
        *) echo "loadtest: LOADTEST_TOGGLE must be on or off, not '$toggle'" >&2; exit 2 ;;
    esac
    export LOADTEST_TOGGLE="$toggle"
    results="loadtests/results/${scenario}-${toggle}"
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
exec "$locust" -f "$locustfile" --headless --host "$host" \
    --users "${LOADTEST_USERS:-20}" --spawn-rate "${LOADTEST_SPAWN_RATE:-5}" \
    --run-time "${LOADTEST_RUN_TIME:-60s}" \
    --csv "$results" --only-summary "$@"

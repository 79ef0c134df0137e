"""One Locust file per technique, named as its toggle: `locust -f loadtests/scenarios/<name>.py`
(or `LOADTEST_SCENARIO=<name> make loadtest`). Each sends the request(s) of the technique's bench
scenario (shop/bench/scenarios/<name>.py) with `X-Perf-Toggles` set from LOADTEST_TOGGLE."""

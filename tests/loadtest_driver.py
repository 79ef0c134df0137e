"""Drives the Locust scenarios in loadtests/scenarios/ without Locust's runner, for
tests/test_loadtests.py. Importing locust monkey-patches the process with gevent, so the tests
run this in a subprocess: `python -m tests.loadtest_driver describe|run HOST [NAME...]` prints JSON.

- `describe`: for each scenario module, its user classes, and the X-Perf-Toggles header its
  user builds (with a hold) under the LOADTEST_TOGGLE of the environment. No request is sent.
- `run HOST [NAME...]`: for each scenario (or those named), one user against HOST: its on_start, then each of its tasks
  once, and every request it sent: name, status, the header sent, the header the server echoed,
  the ids of a list page's rows and the failure if any.
"""

import importlib
import json
import pkgutil
import random
import sys

from locust import User
from locust.env import Environment
from locust.exception import StopUser

from loadtests import scenarios
from loadtests.common import TOGGLE_HEADER, TechniqueUser


def scenario_modules() -> dict[str, object]:
    return {
        module.name: importlib.import_module(f"loadtests.scenarios.{module.name}")
        for module in pkgutil.iter_modules(scenarios.__path__)
        if not module.name.startswith("_")
    }


def user_classes(module) -> list[type[User]]:
    """What Locust would run from this file: the concrete User classes defined in it."""
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, User)
        and not value.abstract
        and value.__module__ == module.__name__
    ]


def describe() -> dict:
    answer = {}
    for name, module in scenario_modules().items():
        classes = user_classes(module)
        entry = {"classes": [cls.__name__ for cls in classes]}
        if len(classes) == 1 and issubclass(classes[0], TechniqueUser):
            cls = classes[0]
            user = cls(Environment(user_classes=[cls], host="http://127.0.0.1:9"))
            TechniqueUser.on_start(user)  # what reads LOADTEST_TOGGLE; no request is sent
            entry.update(
                technique=cls.technique,
                header=user.toggles(fast_serialization=False)[TOGGLE_HEADER],
            )
        answer[name] = entry
    return answer


def run(host: str, *names: str) -> dict:
    answer = {}
    for name, module in scenario_modules().items():
        if names and name not in names:
            continue
        (cls,) = user_classes(module)
        cls.host = host  # as Locust's runner does with --host
        environment = Environment(user_classes=[cls], host=host)
        sent: list[dict] = []

        def record(name, response, exception, sent=sent, **_kwargs):
            sent.append(
                {
                    "name": name,
                    "status": getattr(response, "status_code", None),
                    "sent": response.request.headers.get(TOGGLE_HEADER)
                    if getattr(response, "request", None) is not None
                    else None,
                    "echo": response.headers.get(TOGGLE_HEADER) if response is not None else None,
                    "failure": str(exception) if exception else None,
                    "results": _result_ids(response),
                }
            )

        environment.events.request.add_listener(record)
        random.seed(name)  # the same seeded customers on both sides
        user = cls(environment)
        stopped = False
        try:
            user.on_start()
            for task in dict.fromkeys(cls.tasks):  # each task once, in order
                task(user)
        except StopUser:
            stopped = True
        answer[name] = {"technique": cls.technique, "stopped": stopped, "requests": sent}
    return answer


def _result_ids(response) -> list | None:
    """The ids of a list page's rows, to compare the two sides' answers."""
    try:
        body = response.json()
    except (AttributeError, ValueError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return None
    return [row.get("id") for row in body["results"]]


if __name__ == "__main__":
    command = sys.argv[1]
    result = describe() if command == "describe" else run(*sys.argv[2:])
    print(json.dumps(result))

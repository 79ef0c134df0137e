"""`manage.py bench --http` and `--open-loop`: the bench over real HTTP, against gunicorn.

    manage.py bench --http [--clients N] [--requests N] NAME ...
    manage.py bench --open-loop [--rate R] [--duration S] [--in-flight N] [PATH | NAME]

Both start the Procfile's gunicorn on a free loopback port (shop.bench.server) and stop it at
the end, or send to an already running server given with `--url` (loopback only). Both print
their figures and write bench.json, bench.md and bench.html (shop.bench.http_html) to the
report directory.
"""

from __future__ import annotations

import contextlib
import json
import os
from argparse import ArgumentParser
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from shop import toggles
from shop.bench import dataset, discovery, http, http_html, open_loop, server
from shop.bench.measure import BASELINE_PATH, BenchError, Prepared, Requester, per_request
from shop.perf_headers import TOGGLE_HEADER


def add_arguments(parser: ArgumentParser) -> None:
    group = parser.add_argument_group("over HTTP, against gunicorn")
    group.add_argument(
        "--http",
        action="store_true",
        help="send each named scenario's request to gunicorn over HTTP, off and on, from "
        "--clients concurrent clients (closed loop)",
    )
    group.add_argument(
        "--clients",
        type=int,
        default=http.DEFAULT_CLIENTS,
        metavar="N",
        help=f"--http: concurrent clients (default {http.DEFAULT_CLIENTS})",
    )
    group.add_argument(
        "--requests",
        type=int,
        default=http.DEFAULT_REQUESTS,
        metavar="N",
        help=f"--http: recorded requests per side (default {http.DEFAULT_REQUESTS})",
    )
    group.add_argument(
        "--open-loop",
        action="store_true",
        help="send GET requests on a fixed schedule (--rate per second for --duration "
        "seconds) to one PATH (default the ping endpoint) or a scenario NAME's request, "
        "timing each from when it was due",
    )
    group.add_argument(
        "--rate", type=float, default=200.0, help="--open-loop: requests per second (default 200)"
    )
    group.add_argument(
        "--duration",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="--open-loop: how long the schedule runs (default 10)",
    )
    group.add_argument(
        "--in-flight",
        type=int,
        default=open_loop.DEFAULT_IN_FLIGHT,
        metavar="N",
        help=f"--open-loop: client threads, so requests in flight at most "
        f"(default {open_loop.DEFAULT_IN_FLIGHT})",
    )
    group.add_argument(
        "--url",
        metavar="BASE",
        help="send to this running server (loopback only, e.g. http://127.0.0.1:8000) instead "
        "of starting gunicorn",
    )


def wanted(options: dict[str, Any]) -> bool:
    return bool(options.get("http") or options.get("open_loop"))


def handle(options: dict[str, Any], *, write: Callable[[str], None], default_dir: Path) -> None:
    if options["http"] and options["open_loop"]:
        raise BenchError("--http and --open-loop are two modes: choose one")
    names: list[str] = options["names"]
    if options["url"]:
        open_loop.require_loopback(options["url"])
    timestamp = datetime.now(UTC)
    data: dict[str, Any] = {
        "started_at": timestamp.isoformat(timespec="seconds"),
        "settings_module": os.environ.get("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE),
        # The client, gunicorn and PostgreSQL share these CPUs: the load says how busy they were.
        "machine": dataset.machine(),
    }
    write(
        f"{data['machine']['cpu_count']} CPUs, load average "
        f"{data['machine']['load_average_1m']} at the start"
    )
    if options["open_loop"]:
        if len(names) > 1:
            raise BenchError("--open-loop sends one request: give one PATH or scenario NAME")
        target = names[0] if names else BASELINE_PATH
        # Checked before gunicorn starts: a bad rate fails in a second, not after start-up.
        open_loop.schedule(options["rate"], options["duration"])
        open_loop.check_in_flight(options["in_flight"])
        with _server(options, write) as base_url:
            path, headers, close = _open_loop_request(target)
            try:
                result = open_loop.run(
                    base_url + path,
                    rate=options["rate"],
                    duration_s=options["duration"],
                    headers=headers,
                    in_flight=options["in_flight"],
                )
            finally:
                close()
        lines = result.lines()
        data.update(mode="open-loop", target=target, **result.as_dict())
    else:
        if not names:
            raise BenchError("--http needs the scenario NAMEs to send")
        suites, _ = discovery.load(names)
        _refuse_composite(suites)
        with _server(options, write) as base_url:
            pairs = []
            for suite in suites:
                pairs += http.run_suite(
                    base_url,
                    suite,
                    clients=options["clients"],
                    requests_per_side=options["requests"],
                    out=write,
                )
        lines = http.table(pairs)
        data.update(mode="http", pairs=[pair.as_dict() for pair in pairs])
    write("")
    for line in lines:
        write(line)
    directory = Path(options["report"]) if options.get("report") else default_dir
    for kind, path in _write_report(data, lines, directory, options.get("json")).items():
        write(f"{kind:<14} {path}")


@contextlib.contextmanager
def _server(options: dict[str, Any], write: Callable[[str], None]) -> Iterator[str]:
    if options["url"]:
        yield options["url"].rstrip("/")
        return
    with server.gunicorn() as base_url:
        write(f"gunicorn (the Procfile's web process) at {base_url}")
        yield base_url


def _open_loop_request(target: str) -> tuple[str, dict[str, str], Callable[[], None]]:
    """A path is sent as it is; a scenario NAME sends its request, technique on, as its user."""
    if target.startswith("/"):
        return target, {}, lambda: None
    found = discovery.suite(target)
    _refuse_composite([found])
    scenario = found.scenarios[0]
    if scenario.call is None:
        raise BenchError(f"--open-loop sends requests: {target}'s first scenario is none")
    if scenario.prepare is not None:
        scenario.prepare()
    requester = Requester()
    prepared = Prepared.of(scenario.call(), requester)
    if prepared.method != "GET" or scenario.writes:
        requester.close()
        raise BenchError(f"--open-loop sends GET requests: {target}'s request is {prepared}")
    flags = per_request({**scenario.hold, scenario.name: True})
    headers = {**prepared.headers, TOGGLE_HEADER: toggles.format_flags(flags)}
    return prepared.path, headers, requester.close


def _refuse_composite(suites: list[discovery.Suite]) -> None:
    """A composite scenario's all off needs every module's before() (db_indexes' indexes
    dropped), which the HTTP modes do not run: its pairs run in process only."""
    composite = [suite.name for suite in suites if suite.composite]
    if composite:
        raise BenchError(
            f"{', '.join(composite)}: a composite scenario (every toggle off against every one "
            "on) runs in process only; over HTTP, name its techniques"
        )
    # A module whose sides exist only in this process (table_partitioning's copies, on this
    # process's search_path) says why; a server would measure one side twice.
    for suite in suites:
        why = getattr(discovery.import_module(suite.name), "IN_PROCESS_ONLY", "")
        if why:
            raise BenchError(f"{suite.name} runs in process only: {why}")


def _write_report(
    data: dict[str, Any], lines: list[str], directory: Path, json_path: str | None
) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "JSON": directory / "bench.json",
        "Markdown": directory / "bench.md",
        "HTML": directory / "bench.html",
    }
    text = json.dumps(data, indent=2) + "\n"
    paths["JSON"].write_text(text)
    if json_path:
        Path(json_path).write_text(text)
        paths["JSON (--json)"] = Path(json_path)
    title = "Open loop" if data["mode"] == "open-loop" else "Over HTTP (closed loop)"
    body = lines if data["mode"] == "http" else [f"- {line}" for line in lines]
    markdown = [
        f"# Bench: {title}",
        "",
        f"Started {data['started_at']}, settings `{data['settings_module']}`, "
        f"{data['machine']['cpu_count']} CPUs, load average "
        f"{data['machine']['load_average_1m']} at the start.",
        "",
        *body,
    ]
    paths["Markdown"].write_text("\n".join(markdown) + "\n")
    paths["HTML"].write_text(http_html.render(data))
    return paths

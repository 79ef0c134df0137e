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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from shop import toggles
from shop.bench import dataset, discovery, http, http_html, http_servers, open_loop, report, server
from shop.bench.measure import BASELINE_PATH, BenchError, Prepared, Requester, per_request
from shop.perf_headers import TOGGLE_HEADER

# The options of the HTTP modes, each with the modes it means something in. They default to
# None, so an option given where it means nothing is refused, not silently dropped.
MODE_OPTIONS = {
    "clients": ("--clients", ("http",)),
    "requests": ("--requests", ("http",)),
    "rate": ("--rate", ("open_loop",)),
    "duration": ("--duration", ("open_loop",)),
    "in_flight": ("--in-flight", ("open_loop",)),
    "url": ("--url", ("http", "open_loop")),
}
DEFAULTS = {
    "clients": http.DEFAULT_CLIENTS,
    "requests": http.DEFAULT_REQUESTS,
    "rate": 200.0,
    "duration": 10.0,
    "in_flight": open_loop.DEFAULT_IN_FLIGHT,
}
_MODE_FLAGS = {"http": "--http", "open_loop": "--open-loop"}


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
        metavar="N",
        help=f"--http: concurrent clients (default {http.DEFAULT_CLIENTS})",
    )
    group.add_argument(
        "--requests",
        type=int,
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
        "--rate",
        type=float,
        help=f"--open-loop: requests per second (default {DEFAULTS['rate']:g})",
    )
    group.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help=f"--open-loop: how long the schedule runs (default {DEFAULTS['duration']:g})",
    )
    group.add_argument(
        "--in-flight",
        type=int,
        metavar="N",
        help=f"--open-loop: client threads, so requests in flight at most "
        f"(default {open_loop.DEFAULT_IN_FLIGHT})",
    )
    group.add_argument(
        "--url",
        metavar="BASE",
        help="--http, --open-loop: send to this running server (loopback only, e.g. "
        "http://127.0.0.1:8000) instead of starting gunicorn",
    )


def wanted(options: dict[str, Any]) -> bool:
    return bool(options.get("http") or options.get("open_loop"))


def refuse_misplaced(options: dict[str, Any]) -> None:
    """An option of a mode other than the one running (`--clients` without `--http`)."""
    mode = "http" if options.get("http") else "open_loop" if options.get("open_loop") else None
    misplaced = [
        f"{flag} is for {' or '.join(_MODE_FLAGS[m] for m in modes)}"
        for key, (flag, modes) in MODE_OPTIONS.items()
        if options.get(key) is not None and mode not in modes
    ]
    if misplaced:
        raise BenchError("; ".join(misplaced) + ": it means nothing here")


@dataclass
class Checked:
    """The HTTP run asked for, every option checked and defaulted: what can be refused is
    refused before gunicorn starts (it takes seconds), not after."""

    open_loop: bool
    options: dict[str, Any]  # with the defaults filled in
    # The mode's options as given, defaults left out: the JSON's `arguments`, from which the
    # docs' figures (shop/bench/http_docs.py) show the command that made them.
    given: dict[str, Any] = field(default_factory=dict)
    directory: Path = Path()  # the report directory, created and writable
    suites: list[discovery.Suite] = field(default_factory=list)  # --http
    target: str = BASELINE_PATH  # --open-loop: a PATH or a scenario NAME


def check(options: dict[str, Any], *, default_dir: Path) -> Checked:
    if options["http"] and options["open_loop"]:
        raise BenchError("--http and --open-loop are two modes: choose one")
    refuse_misplaced(options)
    given = {key: options[key] for key in MODE_OPTIONS if options.get(key) is not None}
    options = {**options, **{k: v for k, v in DEFAULTS.items() if options.get(k) is None}}
    names: list[str] = options["names"]
    if options["url"]:
        open_loop.require_loopback(options["url"])
    checked = Checked(open_loop=options["open_loop"], options=options, given=given)
    if checked.open_loop:
        if len(names) > 1:
            raise BenchError("--open-loop sends one request: give one PATH or scenario NAME")
        open_loop.schedule(options["rate"], options["duration"])
        open_loop.check_in_flight(options["in_flight"])
        if names:
            checked.target = names[0]
            if not checked.target.startswith("/"):
                _check_scenario_target(checked.target)
    else:
        if not names:
            raise BenchError("--http needs the scenario NAMEs to send")
        http.check_load(options["clients"], options["requests"])
        checked.suites, _ = discovery.load(names)
        _refuse_composite(checked.suites)
        for suite in checked.suites:
            if options["url"] and http_servers.module_of(suite.name):
                raise BenchError(f"{suite.name}: each arm is a server the bench starts; no --url")
    # Last: a run refused for another reason leaves no empty directory behind.
    checked.directory = report.writable_directory(
        options.get("report"), default_dir, options.get("json")
    )
    return checked


def _check_scenario_target(target: str) -> None:
    """A NAME must be a scenario: `api/perf/ping/` is a path without its leading slash."""
    if target not in discovery.module_names():
        hint = (
            f"a PATH starts with / (/{target})"
            if "/" in target
            else f"scenarios: {', '.join(discovery.module_names())}"
        )
        raise BenchError(f"--open-loop {target}: neither a PATH nor a scenario NAME; {hint}")
    found = discovery.suite(target)
    _refuse_composite([found])
    if found.scenarios[0].call is None:
        raise BenchError(f"--open-loop sends requests: {target}'s first scenario is none")
    if found.scenarios[0].writes:
        raise BenchError(f"--open-loop sends GET requests: {target}'s request writes")


def handle(checked: Checked, *, write: Callable[[str], None]) -> None:
    """Run what `check` accepted, print its figures and write its reports. Raises when a side
    (or the open loop) got no answer without error: its figures time failures."""
    options = checked.options
    timestamp = datetime.now(UTC)
    data: dict[str, Any] = {
        "started_at": timestamp.isoformat(timespec="seconds"),
        "settings_module": os.environ.get("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE),
        # The client, gunicorn and PostgreSQL share these CPUs: the load says how busy they were.
        "machine": dataset.machine(),
        # What `--http` or `--open-loop` was given, and the data it ran on: the command and the
        # data set a page names next to the figures (shop/bench/http_docs.py).
        "arguments": {"names": list(options["names"]), **checked.given},
        "dataset": _dataset(),
    }
    write(
        f"{data['machine']['cpu_count']} CPUs, load average "
        f"{data['machine']['load_average_1m']} at the start"
    )
    failed: list[str] = []
    if checked.open_loop:
        # Prepared before gunicorn starts: a scenario's request that is not a GET fails fast.
        path, headers, close = _open_loop_request(checked.target)
        try:
            with _server(options, write) as base_url:
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
        data.update(mode="open-loop", target=checked.target, **result.as_dict())
        if result.errors == result.sent:
            kinds = ", ".join(f"{k}: {n}" for k, n in sorted(result.error_kinds.items()))
            failed.append(f"GET {checked.target} ({kinds})")
    else:
        pairs = []
        # A technique whose sides are processes starts a gunicorn per arm (connection_pooling).
        for suite in checked.suites:
            if module := http_servers.module_of(suite.name):
                pairs.append(
                    http_servers.run(
                        suite,
                        module,
                        clients=options["clients"],
                        requests_per_side=options["requests"],
                        out=write,
                    )
                )
        suites = [suite for suite in checked.suites if not http_servers.module_of(suite.name)]
        with _server(options, write) if suites else contextlib.nullcontext("") as base_url:
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
        failed = http.failed_sides(pairs)
    write("")
    for line in lines:
        write(line)
    for kind, path in _write_report(data, lines, checked.directory, options.get("json")).items():
        write(f"{kind:<14} {path}")
    if failed:
        where = options["url"] or "gunicorn"
        raise BenchError(
            f"every request failed: {'; '.join(failed)}. Is {where} answering? "
            "The report shows the failures."
        )


def _dataset() -> dict[str, Any]:
    rows = dataset.row_counts()
    return {"size": dataset.matching_size(rows), "rows": rows}


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
    scenario = discovery.suite(target).scenarios[0]  # checked by check()
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

"""`manage.py bench --sweep NAME`: the command's sweep path, after its checks (settings,
migrations, --repeat). Seeds the size asked for, restores what a killed run left, runs every
point (`sweep.run`), then prints the table and writes the reports (and the JSON to `--json`
too: `docs/figures/sweeps/<name>.json` is what the chapters show, `shop/bench/sweep_docs.py`)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from shop.bench import dataset, sweep, sweep_report
from shop.bench.alternation import Plan
from shop.bench.hooks import restore
from shop.bench.measure import BenchError


def run(
    command: BaseCommand,
    name: str,
    *,
    size: str | None,
    plan: Plan,
    report: str | None = None,
    json: str | None = None,
    **_: object,
) -> None:
    from shop.management.commands.bench import ConsoleProgress  # the command's own progress

    started = perf_counter()
    try:
        suite, definition = sweep.load(name)
    except BenchError as exc:
        raise CommandError(str(exc)) from None
    progress = ConsoleProgress(command.stderr)
    rows = dataset.ensure(size, out=progress.note) if size else dataset.row_counts()
    timestamp = datetime.now(UTC)
    result = sweep.SweepRun(
        name=name,
        axis=definition.axis,
        shape=definition.shape,
        parts=definition.parts,
        series={line.name: line.axis for line in definition.series},
        started_at=timestamp.isoformat(timespec="seconds"),
        size=size or dataset.matching_size(rows),
        rows=rows,
        machine=dataset.machine(),
        repeat=plan.repeat,
        settings_module=os.environ.get("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE),
    )
    for line in sweep_report.intro(result):
        command.stdout.write(line)
    try:
        result.problems.extend(restore([suite], progress, restored=result.restored))
        sweep.run(suite, definition, plan=plan, progress=progress, into=result)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        progress.close()
        result.elapsed_s = perf_counter() - started
    directory = (
        Path(report)
        if report
        else Path(settings.BASE_DIR) / "reports" / f"sweep-{name}-{timestamp:%Y%m%d-%H%M%S}"
    )
    paths = sweep_report.write(result, directory=directory, json_path=Path(json) if json else None)
    command.stdout.write("")
    command.stdout.write(sweep_report.table(result))
    command.stdout.write("")
    for kind, path in paths.items():
        command.stdout.write(f"{kind:<10} {path}")
    command.stdout.write(f"elapsed {result.elapsed_s:.0f} s")
    if result.different_answers:
        command.stderr.write(f"Different answers off and on: {', '.join(result.different_answers)}")
    if result.interrupted:
        raise CommandError("Interrupted: the finished points are in the report.", returncode=130)
    if result.failed:
        raise CommandError("Some points failed: see the errors above and in the report.")
    if not result.points:
        raise CommandError(
            f"The data holds none of the sweep's points ({definition.axis}): seed it first "
            "(`manage.py seed --size medium`, or `--size medium` here)."
        )

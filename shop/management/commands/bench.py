"""`python manage.py bench [NAME ...] [--size small|medium|large] [--repeat N] [--json PATH]
[--report DIR] [--strict] [--sweep NAME]`: each technique off and on, in pairs, through the real
request path. `--http` and `--open-loop` send over real HTTP to gunicorn instead
(shop/bench/http_cli.py); `--sweep` runs one technique's pair at several sizes of its work.
SIGTERM stops it as Ctrl-C does: the finished scenarios are reported and every hook restores.

Run it with settings that time honestly (DEBUG off, no debug toolbar):

    DJANGO_SETTINGS_MODULE=config.settings.loadtest python manage.py bench --size small
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from shop.bench import alternation, dataset, discovery, http_cli, report, runner, sweep_command
from shop.bench.hooks import restore, sigterm_interrupts
from shop.bench.measure import BenchError
from shop.bench.results import Run
from shop.seed import SIZES

SETTINGS_HINT = "DJANGO_SETTINGS_MODULE=config.settings.loadtest python manage.py bench ..."


class ConsoleProgress:
    """One line per scenario on stderr; on a terminal it counts the runs in place as they go."""

    def __init__(self, stream: OutputWrapper) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.label, self.total, self.done, self.started = "", 0, 0, 0.0

    def start(self, label: str, total: int) -> None:
        self._finish()
        self.label, self.total, self.done, self.started = label, total, 0, perf_counter()
        self._show()

    def advance(self) -> None:
        self.done += 1
        if self.live:
            self._show()

    def note(self, line: str) -> None:
        self._finish()
        self._write(line.rstrip() + "\n")

    def close(self) -> None:
        self._finish()

    def _show(self) -> None:
        text = f"  {self.label}: {self.done}/{self.total} runs"
        if self.live:
            self._write("\r\033[K" + text)
        elif self.done == 0:
            self._write(f"  {self.label}: {self.total} runs ...\n")
        self.stream.flush()

    def _finish(self) -> None:
        if self.label:
            if self.live:
                seconds = perf_counter() - self.started
                self._write(f"\r\033[K  {self.label}: {self.done} runs, {seconds:.1f} s\n")
            self.label = ""

    def _write(self, text: str) -> None:
        # Plain (stderr is styled as errors by default), and no newline added.
        self.stream.write(text, style_func=lambda plain: plain, ending="")


class Command(BaseCommand):
    help = (
        "Benchmark techniques in pairs: each scenario's request through the whole Django stack, "
        "warmed up, then alternating off and on on the same data. Checks that the answers are "
        "the same; reports queries, p50/p95 ms, bytes and peak memory; writes JSON, Markdown "
        "and HTML reports. With no names, every scenario, the composite ones (order_history: "
        "every technique off against every one on, and its SQL floor) last. Needs DEBUG off: "
        + SETTINGS_HINT
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "names",
            nargs="*",
            metavar="NAME",
            help="scenarios to run, by technique (or composite scenario, order_history); "
            "default: all",
        )
        parser.add_argument(
            "--size",
            choices=list(SIZES),
            help="the data set to run on: seeds it first if the database holds another "
            "(default: whatever the database holds)",
        )
        parser.add_argument(
            "--repeat",
            type=int,
            default=alternation.DEFAULT_REPEAT,
            metavar="N",
            help=f"recorded runs per side (default {alternation.DEFAULT_REPEAT}; a slow scenario "
            "may cap it)",
        )
        parser.add_argument(
            "--budget",
            type=float,
            default=alternation.BUDGET_S,
            metavar="SECONDS",
            help=f"recorded runs of one scenario stop after a whole off/on cycle once they have "
            f"taken this long (default {alternation.BUDGET_S:g}); each side still runs once",
        )
        parser.add_argument("--json", metavar="PATH", help="also write the JSON here")
        parser.add_argument(
            "--report",
            metavar="DIR",
            help="where bench.json, bench.md and bench.html go (default reports/bench-<time>/)",
        )
        parser.add_argument(
            "--sweep",
            metavar="NAME",
            help="run NAME's scenario at each point of its SWEEP (offsets, page sizes...) "
            "instead of the pairs: sweep.json, sweep.md and sweep.html, a chart per sweep",
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="exit non-zero when any technique gives a different answer off and on, or "
            "an unstable one (a side whose runs did not all give its first answer)",
        )
        http_cli.add_arguments(parser)  # --http, --open-loop and their options

    def handle(self, *args, **options):
        self._refuse_bad_options(options)
        # SIGTERM unwinds like Ctrl-C, so every after() hook restores (db_indexes' indexes).
        with sigterm_interrupts():
            if http_cli.wanted(options):
                self._handle_over_http(options)
            else:
                self._handle(*args, **options)

    @staticmethod
    def _refuse_bad_options(options) -> None:
        """What can be refused from the options alone, before seeding, restoring or a run."""
        if options.get("sweep") is not None and not options["sweep"].strip():
            raise CommandError("--sweep needs a technique's NAME")
        budget = options.get("budget", alternation.BUDGET_S)
        if not budget >= 0:  # nan too; 0 is one run per side
            raise CommandError("--budget must be 0 or more seconds")
        try:
            http_cli.refuse_misplaced(options)
        except BenchError as exc:
            raise CommandError(str(exc)) from None

    def _handle_over_http(self, options) -> None:
        """--http or --open-loop: against gunicorn, which is stopped on the way out."""
        # Options of the in-process pairs that mean nothing here: refused, not silently dropped.
        ignored = [
            flag
            for flag, given in (
                ("--sweep", options.get("sweep")),
                ("--strict", options.get("strict")),
                ("--size", options.get("size")),
            )
            if given not in (None, False)
        ]
        if ignored:
            raise CommandError(
                f"{', '.join(ignored)}: for the in-process pairs, not for --http or "
                "--open-loop, which use the data the database holds (seed it with manage.py seed)"
            )
        self._refuse_distorting_settings()
        self._refuse_unmigrated_database()
        try:
            # Every option checked before restoring anything or starting gunicorn.
            checked = http_cli.check(options, default_dir=self._default_dir(datetime.now(UTC)))
            # As for the pairs: what a killed run left behind (indexes dropped) is put back first.
            restored: list[str] = []
            failures = restore(
                discovery.load([])[0], ConsoleProgress(self.stderr), restored=restored
            )
            for line in [*(f"restored at start-up: {r}" for r in restored), *failures]:
                self.stderr.write(line)
            http_cli.handle(checked, write=self.stdout.write)
        except BenchError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            raise CommandError(
                "Interrupted (Ctrl-C or SIGTERM): gunicorn stopped.", returncode=130
            ) from None

    def _handle(self, *args, names, size, repeat, budget=alternation.BUDGET_S, **options):
        self._refuse_distorting_settings()
        self._refuse_unmigrated_database()
        if repeat < 1:
            raise CommandError("--repeat must be at least 1")
        plan = alternation.Plan(repeat=repeat, budget_s=budget)
        timestamp = datetime.now(UTC)
        if options.get("sweep"):
            if names:
                raise CommandError("--sweep runs one technique's sweep: name no other technique")
            try:  # sweep_command writes its reports under reports/ unless --report says
                report.writable_directory(
                    options.get("report"), Path(settings.BASE_DIR) / "reports", options.get("json")
                )
            except BenchError as exc:
                raise CommandError(str(exc)) from None
            return sweep_command.run(self, options["sweep"], size=size, plan=plan, **options)
        started = perf_counter()
        write = self.stdout.write
        progress = ConsoleProgress(self.stderr)
        try:
            suites, problems = discovery.load(names)
            # Every module: a composite scenario's all off calls every before() hook too
            # (db_indexes drops its indexes), and every after() hook restores at start-up.
            every_suite = discovery.load([])[0] if names else suites
            # Before the run, not after it: a report path that cannot be written fails now.
            directory = report.writable_directory(
                options.get("report"), self._default_dir(timestamp), options.get("json")
            )
        except BenchError as exc:
            raise CommandError(str(exc)) from None
        for problem in problems:
            progress.note(f"skipped {problem}")
        rows = dataset.ensure(size, out=progress.note) if size else dataset.row_counts()
        run = Run(
            started_at=timestamp.isoformat(timespec="seconds"),
            settings_module=os.environ.get("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE),
            size=size,
            detected_size=dataset.matching_size(rows),
            rows=rows,
            machine=dataset.machine(),
            repeat=plan.repeat,
            warmup=plan.warmup,
            budget_s=plan.budget_s,
            problems=problems,
            perf_toggles=os.environ.get("PERF_TOGGLES"),
        )
        for line in report.context_lines(run):
            write(line)
        try:
            # A run killed before its after() hooks ran (SIGKILL, a power cut) left the
            # database in one side's state: put every module's normal state back first.
            run.problems.extend(restore(every_suite, progress, restored=run.restored))
            for line in run.restored:  # a killed run, or `db_indexes off` left behind
                progress.note(f"restored at start-up: {line}")
            runner.run(
                suites=suites,
                hook_suites=every_suite,
                plan=plan,
                progress=progress,
                into=run,
            )
        except KeyboardInterrupt:
            run.interrupted = True
        finally:
            progress.close()
            run.elapsed_s = perf_counter() - started
        json_path = Path(options["json"]) if options.get("json") else None
        paths = report.write(run, directory=directory, json_path=json_path)
        write("")
        write(report.table(run))
        for heading, lines in (
            ("queries per database, per request (p50):", report.alias_lines(run)),
            ("counts beyond queries, per request (p50):", report.metrics_lines(run)),
        ):
            if lines:
                write("")
                write(heading)
                for line in lines:
                    write(f"  {line}")
        more = report.run_lines(run)
        if more:
            write("")
            for line in more:
                write(line)
        write("")
        for kind, path in paths.items():
            write(f"{kind:<14} {path}")
        write(f"elapsed {run.elapsed_s:.0f} s")
        self._exit(run, strict=options.get("strict", False))

    def _refuse_distorting_settings(self) -> None:
        if settings.DEBUG or "debug_toolbar" in settings.INSTALLED_APPS:
            raise CommandError(
                "The bench does not run with DEBUG on or the debug toolbar installed: DEBUG keeps "
                "every query in memory (connection.queries) and the toolbar instruments every "
                f"request, so both distort the timings. Run it as: {SETTINGS_HINT}"
            )
        if not settings.PERF_ALLOW_OVERRIDE:
            raise CommandError(
                "PERF_ALLOW_OVERRIDE is off in these settings, so the X-Perf-Toggles header the "
                f"bench flips techniques with would be ignored. Run it as: {SETTINGS_HINT}"
            )

    @staticmethod
    def _refuse_unmigrated_database() -> None:
        """Scenarios and hooks expect the schema the code was written for: on an older one they
        fail half-way, or db_indexes' hooks leave part of their indexes behind."""
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            pending = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan)
            raise CommandError(
                f"The database has unapplied migrations ({pending}): run "
                "`python manage.py migrate` first."
            )

    @staticmethod
    def _default_dir(timestamp: datetime) -> Path:
        return Path(settings.BASE_DIR) / "reports" / f"bench-{timestamp:%Y%m%d-%H%M%S}"

    def _exit(self, run: Run, *, strict: bool) -> None:
        different, unstable = run.different_answers, run.unstable_answers
        if different:
            self.stderr.write(f"Different answers off and on: {', '.join(different)}")
        if unstable:
            self.stderr.write(
                f"Unstable answers (a side's runs did not all answer alike): {', '.join(unstable)}"
            )
        if run.interrupted:
            raise CommandError(
                "Interrupted (Ctrl-C or SIGTERM): the finished scenarios are in the report; "
                "every hook restored (toggles are per request and never outlive it).",
                returncode=130,
            )
        if run.failed:
            raise CommandError("Some scenarios failed: see the errors above and in the report.")
        if strict and different:
            raise CommandError("--strict: a technique gave a different answer off and on.")
        if strict and unstable:
            raise CommandError("--strict: a technique's answer changed from one run to the next.")

"""`python manage.py bench_docs [--from PATH] [--check]`: the docs' figures from one bench run.

With `--from`, the JSON of a whole `manage.py bench` run becomes the kept one
(`docs/figures/bench.json`). Then every marked block in README.md and docs/ is rewritten from
the kept JSON, every `<!-- sweep:NAME -->` block from docs/figures/sweeps/NAME.json, and every
`<!-- http:NAME -->` block from docs/figures/http/NAME.json. See shop/bench/docs.py,
shop/bench/sweep_docs.py, shop/bench/http_docs.py and docs/bench.md ("Regenerating the docs'
figures").
"""

import json
import shutil
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from shop.bench import docs, http_docs, sweep_docs
from shop.bench.discovery import module_names


class Command(BaseCommand):
    help = (
        "Rewrite the bench figures in README.md and docs/ (the <!-- bench:NAME --> blocks) from "
        "docs/figures/bench.json, after copying a new run's JSON there with --from; and the "
        "<!-- sweep:NAME --> blocks from docs/figures/sweeps/NAME.json, and the <!-- http:NAME --> "
        "blocks from docs/figures/http/NAME.json."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from",
            dest="source",
            type=Path,
            metavar="PATH",
            help="the JSON of a whole `manage.py bench` run (`bench --json PATH`) to keep",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="change nothing; exit non-zero if a page's blocks do not match the kept JSON",
        )

    def handle(self, *args, source: Path | None, check: bool, **options):
        if source is not None:
            if check:
                raise CommandError("--check reads the kept JSON; it does not take --from")
            self._keep(source)
        if not docs.KEPT.exists():
            raise CommandError(f"{docs.KEPT} does not exist: give a bench run's JSON with --from")
        data = docs.load()
        stale = []
        for page in docs.pages():
            text = page.read_text(encoding="utf-8")
            try:
                written = http_docs.update(sweep_docs.update(docs.update(text, data)))
            except docs.DocsError as exc:
                raise CommandError(f"{page}: {exc}") from None
            if written == text:
                continue
            stale.append(page)
            if not check:
                page.write_text(written, encoding="utf-8")
        verb = "out of date" if check else "rewritten"
        for page in stale:
            self.stdout.write(f"{verb}: {page}")
        if not stale:
            self.stdout.write("every page's figures match their kept runs in docs/figures/")
        if check and stale:
            raise CommandError("run `python manage.py bench_docs` to rewrite them")

    def _keep(self, source: Path) -> None:
        """Copy a run's JSON into place, refusing one that cannot stand for the whole bench."""
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"{source}: not a bench JSON ({exc})") from None
        if not isinstance(data, dict) or "techniques" not in data:
            raise CommandError(f"{source}: not a bench JSON (no `techniques`)")
        ran = {entry.get("name") for entry in data["techniques"]}
        missing = [name for name in module_names() if name not in ran]
        if missing:
            raise CommandError(
                f"{source} is not a whole run: it lacks {', '.join(missing)}. The docs' figures "
                "come from one run of every scenario: `manage.py bench --size medium --json PATH`."
            )
        if data.get("interrupted"):
            raise CommandError(f"{source}: the run was interrupted; keep a complete one")
        # The chapters' prose describes the medium data set (100k orders, 10k products).
        measured_on = (data.get("dataset") or {}).get("size")
        if measured_on != "medium":
            raise CommandError(
                f"{source}: the run measured the {measured_on or 'unrecognised'} data set; the "
                "docs describe medium: `manage.py bench --size medium --json PATH`."
            )
        docs.KEPT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, docs.KEPT)
        self.stdout.write(f"kept {source} as {docs.KEPT}")

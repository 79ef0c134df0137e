"""What a scenario may declare beyond off and on: extra arms, timed in the same alternation and
compared with the on side, and targets on its figures, checked in every report."""

import pytest
from django.test import Client

from shop.bench import discovery, docs, runner
from shop.bench.measure import BASELINE_PATH, BenchError
from shop.bench.samples import Sample
from shop.bench.scenario import Call, ExtraArm, Scenario
from shop.bench.targets import Target
from tests.shop.conftest import FAKE, run_bench

pytestmark = pytest.mark.django_db

PATH = "/api/products/?page_size=12"


def _arm(label: str, answer, body: bytes, order: list[str]) -> ExtraArm:
    """An arm that answers `answer` and builds `body`, without the API: as the SQL floor does."""

    def run() -> Sample:
        order.append(label)
        return Sample(
            ms=0.5, queries={"default": 0, "replica": 0}, bytes=2, status=200, answer=answer
        )

    return ExtraArm(label=label, title=f"the {label} arm", run=run, body=lambda: body)


@pytest.fixture
def armed(products, fake_module, monkeypatch):
    """A scenario with two extra arms: one gives the on side's answer and bytes, one does not;
    and targets, one met and one that cannot be."""
    order: list[str] = []
    real_send = runner.send

    def recording(requester, prepared, *, flags, **kwargs):
        order.append("base" if prepared.path == BASELINE_PATH else ("on" if flags[FAKE] else "off"))
        return real_send(requester, prepared, flags=flags, **kwargs)

    monkeypatch.setattr(runner, "send", recording)
    body = Client().get(PATH).content  # what the on side sends (the fake toggle changes nothing)
    fake_module.SCENARIO = Scenario(
        name=FAKE,
        title="product list",
        call=lambda: Call("GET", PATH),
        answer=lambda response: response.status_code,
        arms=(_arm("same", 200, body, order), _arm("other", 404, b"{}", order)),
        targets=(
            Target("on.queries", at_most=2, label="queries on"),
            Target("arms.same.on_multiple_p50", at_most=1e-9, label="as fast as the arm"),
            Target("cold.speedup_p50", at_least=1),  # no cold runs: no value, not met
        ),
    )
    return order


def test_extra_arms_run_in_the_same_alternation_and_are_compared_with_on(armed, tmp_path):
    data, out = run_bench(tmp_path, FAKE, "--repeat", "2")
    warmup = ["off", "on", "same", "other", "base"]  # one warm-up run each
    cycle = ["off", "on", "same", "other", "base", "base", "other", "same", "on", "off"]
    assert armed == [*warmup, *cycle]  # 2 runs: one ABBA cycle
    (entry,) = data["techniques"]
    same, other = entry["arms"]["same"], entry["arms"]["other"]
    assert same["side"]["runs"] == other["side"]["runs"] == 2
    assert same["same_answer"] is True and same["identical_bytes"] is True
    assert other["same_answer"] is False and other["identical_bytes"] is False
    assert entry["same_answer"] is True  # off against on still holds
    assert entry["difference"] == "the other arm against on: answer: 200 on, 404 other"
    assert same["on_multiple_p50"] == pytest.approx(entry["on"]["p50_ms"] / 0.5, rel=0.01)
    assert "the same arm" in out and "same answer as on ✗ DIFFERENT, not byte for byte" in out
    html = (tmp_path / "bench.html").read_text()
    assert ">the other arm: " in html and "the other arm = on ✗ DIFFERENT" in html


def test_targets_are_checked_and_reported_for_any_entry_that_declares_them(armed, tmp_path):
    data, out = run_bench(tmp_path, FAKE, "--repeat", "1")
    (entry,) = data["techniques"]
    assert entry["targets"] == {
        "on.queries": {"label": "queries on", "target": "<= 2", "value": 2, "met": True},
        "arms.same.on_multiple_p50": {
            "label": "as fast as the arm",
            "target": "<= 1e-09",
            "value": entry["arms"]["same"]["on_multiple_p50"],
            "met": False,
        },
        "cold.speedup_p50": {
            "label": "cold.speedup_p50", "target": ">= 1", "value": None, "met": False
        },
    }  # fmt: skip
    assert "targets: queries on <= 2: 2 ✓ · as fast as the arm <= 1e-09: " in out
    markdown = (tmp_path / "bench.md").read_text()
    assert "## Cold runs, extra arms and targets" in markdown and "queries on <= 2: 2 ✓" in markdown
    assert "<li>queries on &lt;= 2: 2 ✓</li>" in (tmp_path / "bench.html").read_text()
    # The docs' block renders the arms as columns and the targets as a sentence.
    page = docs.render(FAKE, data)
    assert "| | off | on | off ÷ on | the same arm | the other arm |" in page
    assert "Targets: queries on <= 2: 2 met; as fast as the arm <= 1e-09: " in page
    assert "cold.speedup_p50 >= 1: – **not met**" in page


def test_a_target_takes_one_bound_and_reads_a_missing_figure_as_not_met():
    with pytest.raises(ValueError, match="one of at_most and at_least"):
        Target("speedup_p50")
    with pytest.raises(ValueError, match="one of at_most and at_least"):
        Target("speedup_p50", at_most=1, at_least=2)
    entry = {"speedup_p50": 5.0, "on": {"queries": 3}, "arms": {}}
    assert Target("speedup_p50", at_least=5).check(entry)["met"] is True
    assert Target("on.queries", at_most=2).check(entry)["met"] is False
    assert Target("arms.floor.on_multiple_p50", at_most=3).check(entry) == {
        "label": "arms.floor.on_multiple_p50", "target": "<= 3", "value": None, "met": False
    }  # fmt: skip


@pytest.mark.parametrize("labels", [("baseline",), ("floor", "floor")])
def test_an_arm_labelled_as_another_is_refused(fake_module, labels):
    arms = tuple(_arm(label, 200, b"", []) for label in labels)
    fake_module.SCENARIO = Scenario(name=FAKE, title="t", call=lambda: Call("GET", PATH), arms=arms)
    with pytest.raises(BenchError, match=f"an extra arm is labelled {labels[-1]!r}"):
        discovery.suite(FAKE)


def test_a_job_scenario_times_itself_in_each_sides_state_with_no_baseline(fake_module, tmp_path):
    """`run=` instead of `call`: each side is the job, called with its state after its
    before() hook; no request, no baseline."""
    calls: list[tuple[str, bool]] = []

    def job(state: bool) -> Sample:
        calls.append(("run", state))
        return Sample(
            ms=1.0 if state else 9.0,
            queries={"default": 1, "replica": 0},
            bytes=0,
            status=200,
            answer={"rows": 3},
        )

    fake_module.before = lambda enabled: calls.append(("before", enabled))
    fake_module.SCENARIO = Scenario(
        name=FAKE, title="a job", run=job, path="JOB the fake job", repeat=2
    )
    data, _ = run_bench(tmp_path, FAKE, "--repeat", "2")
    (entry,) = data["techniques"]
    assert entry["path"] == "JOB the fake job" and entry["baseline"] is None
    assert entry["same_answer"] is True and entry["speedup_p50"] == 9.0
    assert entry["off"]["runs"] == entry["on"]["runs"] == 2
    # every run of a side follows that side's before()
    side = None
    for kind, state in calls:
        if kind == "before":
            side = state
        else:
            assert state == side
    assert [state for kind, state in calls if kind == "run"].count(True) == 2

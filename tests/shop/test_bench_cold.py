"""The cold arm: each side timed again, every run after a reset that makes it a first request (a
new database connection, the project's cache emptied), reported next to the warm runs."""

import copy

import pytest
from django.core.cache import cache
from django.db import connection

from shop.bench import cold, docs
from shop.bench.docs_values import formatted
from shop.bench.measure import BenchError
from shop.bench.scenario import Call, Scenario
from tests.factories import ProductFactory
from tests.shop.conftest import FAKE, run_bench

MARK = "bench-cold-test"


def _watching(fake_module, seen: list[tuple[int, bool]], **fields) -> None:
    """A scenario whose answer notes, after each run, the database backend that served it and
    whether the run found the key the run before it cached."""

    def answer(response):
        seen.append((connection.connection.info.backend_pid, cache.get(MARK) is not None))
        cache.set(MARK, 1)
        return response.json()

    fake_module.SCENARIO = Scenario(
        name=FAKE,
        title="product list",
        call=lambda: Call("GET", "/api/products/?page_size=3"),
        answer=answer,
        cold=True,
        **fields,
    )


# The reset closes the database connection, which a test's own transaction would not survive:
# the test commits, and its tables are emptied after it.
@pytest.mark.django_db(transaction=True)
def test_each_cold_run_opens_a_new_connection_and_finds_the_cache_empty(
    fake_module, own_cache_keys, tmp_path
):
    ProductFactory.create_batch(3)
    seen: list[tuple[int, bool]] = []
    _watching(fake_module, seen)
    data, out = run_bench(tmp_path, FAKE, "--repeat", "3")
    (entry,) = data["techniques"]
    # Warm: 1 warm-up and 3 recorded runs a side; then cold: 3 a side, no warm-up.
    warm, cold_runs = seen[:8], seen[8:]
    assert len(cold_runs) == 6
    assert len({pid for pid, _ in warm}) == 1  # one connection, kept between requests
    cold_pids = {pid for pid, _ in cold_runs}
    assert len(cold_pids) == 6 and not cold_pids & {warm[0][0]}  # a new backend every run
    assert all(cached for _, cached in warm[1:])
    assert not any(cached for _, cached in cold_runs)  # the cache emptied before every run
    assert entry["cold"]["off"]["runs"] == entry["cold"]["on"]["runs"] == 3
    assert entry["cold"]["speedup_p50"] == pytest.approx(
        entry["cold"]["off"]["p50_ms"] / entry["cold"]["on"]["p50_ms"], rel=0.01
    )
    assert entry["same_answer"] is True and entry["answer_stable"] is True
    assert "cold off" in out and "cold on" in out
    assert f"{entry['cold']['off']['p50_ms']:.2f}"[:3] in out  # the table's cold p50 column
    assert ">cold on: " in (tmp_path / "bench.html").read_text()
    page = docs.render(FAKE, data)
    assert "| cold p50 |" in page and "| cold queries | 2 | 2 |" in page
    assert "Cold, each run a first request" in page


@pytest.mark.django_db
def test_a_scenario_may_pass_its_own_reset(products, fake_module, tmp_path):
    seen: list[tuple[int, bool]] = []
    resets: list[int] = []
    _watching(fake_module, seen, reset=lambda: resets.append(len(seen)))
    run_bench(tmp_path, FAKE, "--repeat", "2")
    # Called before each of the 4 cold runs, and only then (after the 6 warm runs).
    assert resets == [6, 7, 8, 9]
    assert len({pid for pid, _ in seen}) == 1  # its reset keeps the connection


@pytest.mark.django_db
def test_a_cold_answer_that_differs_from_the_warm_one_is_reported(products, fake_module, tmp_path):
    fake_module.SCENARIO = Scenario(
        name=FAKE,
        title="product list",
        call=lambda: Call("GET", "/api/products/?page_size=3"),
        # A first request that answers otherwise than a warm one: what a cache bug looks like.
        answer=lambda response: "cold" if fake_module.events else "warm",
        cold=True,
        reset=lambda: fake_module.events.append("reset"),
    )
    data, _ = run_bench(tmp_path, FAKE, "--repeat", "1")
    (entry,) = data["techniques"]
    assert entry["same_answer"] is False
    assert entry["difference"] == (
        "cold off against off: answer, from offset 0: 'warm' off, 'cold' cold off"
    )


def test_the_reset_deletes_only_the_project_s_cache_keys(own_cache_keys):
    cold.clear_cache()  # what an earlier test of this process left under the prefix
    cache.set("a", 1)
    cache.set("b", 2)
    client = cache._cache.get_client(write=True)
    client.set("not-django-bench-cold-test", 1)  # a key outside the cache's prefix
    try:
        assert cold.clear_cache() == 2
        assert cache.get("a") is None and client.get("not-django-bench-cold-test") == b"1"
    finally:
        client.delete("not-django-bench-cold-test")


def test_the_docs_leave_out_the_cold_rows_of_a_run_without_them():
    data = copy.deepcopy(docs.load())
    (entry,) = [e for e in data["techniques"] if e["name"] == "order_history"]
    entry.pop("cold", None)  # whatever the kept run measured
    assert "| cold p50 |" not in docs.render("order_history", data)
    entry["cold"] = {"off": entry["off"], "on": entry["on"], "speedup_p50": 2.0}
    off, on = (formatted(entry[side]["p50_ms"], "ms") for side in ("off", "on"))
    assert f"| cold p50 | {off} | {on} | 2.0× | – |" in docs.render("order_history", data)


@pytest.mark.django_db
def test_a_reset_inside_a_transaction_is_refused_not_half_done():
    before = connection.connection.info.backend_pid
    with pytest.raises(BenchError, match="would end the transaction open on default"):
        cold.reset()
    assert connection.connection.info.backend_pid == before  # still the same, still open

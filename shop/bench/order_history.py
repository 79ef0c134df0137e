"""The order-history page with every technique off, then every one on, and its SQL floor."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence

from orders.selectors import busiest_customer
from shop import toggles
from shop.bench import floor
from shop.bench.alternation import Arm, Plan, Progress, alternate
from shop.bench.answers import AnswerKeeper, compare
from shop.bench.discovery import Suite
from shop.bench.hooks import Hooks, restore
from shop.bench.measure import Prepared, Requester, baseline_of, per_request, send
from shop.bench.results import OrderHistory, Sample, Side, error_text
from shop.bench.scenario import Call
from shop.perf_headers import TOGGLE_HEADER

PAGE_SIZE = 50
PATH = f"/api/orders/?page_size={PAGE_SIZE}"
# The host the test client sends, so the floor's `next` link is the one DRF builds.
BASE_URL = "http://testserver/api/orders/"


def run(
    *,
    suites: Sequence[Suite],
    requester: Requester,
    plan: Plan,
    progress: Progress,
) -> OrderHistory | None:
    """The order-history page with every registered toggle off, then every one on, the SQL
    floor and the baseline request, alternated (off, on, floor, baseline, baseline, floor, ...).
    Every module's before() hook runs too: all-off means db_indexes' indexes dropped as well.
    None when there are no orders."""
    # The customer with the most orders: the longest history to page through.
    found = busiest_customer()
    if found is None:
        progress.note("order_history: no orders in the database, skipped")
        return None
    user, orders = found
    history = OrderHistory(path=f"GET {PATH}", user=user.username, orders=orders)
    everything = [toggle.name for toggle in toggles.registered()]
    flags = {state: dict.fromkeys(everything, state) for state in (False, True)}
    hooks = Hooks(suites, flags, plans=False)
    try:
        call = Call("GET", PATH, user=user.username)
        prepared = Prepared.of(call, requester)
        baseline = Prepared.of(baseline_of(call), requester)
        user_id = user.pk

        def endpoint(state: bool) -> Callable[[], Sample]:
            return lambda: send(requester, prepared, flags=flags[state])

        def the_floor() -> Sample:
            return floor.sample(user_id=user_id, page_size=PAGE_SIZE, base_url=BASE_URL)

        keepers = {"off": AnswerKeeper(endpoint(False)), "on": AnswerKeeper(endpoint(True))}
        keepers["floor"] = AnswerKeeper(the_floor)
        hooks.enter(True)
        history.floor_identical_bytes = _floor_bytes_match(
            requester, prepared, flags[True], user_id
        )
        samples = alternate(
            [
                Arm("off", False, keepers["off"]),
                Arm("on", True, keepers["on"]),
                Arm("floor", True, keepers["floor"]),
                Arm("baseline", True, lambda: send(requester, baseline, flags=flags[True])),
            ],
            runs=plan.runs(),
            warmup=plan.warmups(),
            budget_s=plan.budget_s,
            enter=hooks.enter if hooks.blocking else None,
            progress=progress,
            label="order_history: all off, all on, SQL floor, baseline",
        )
        history.off, history.on = Side(samples["off"]), Side(samples["on"])
        history.floor = Side(samples["floor"])
        history.baseline = Side(samples["baseline"])
        history.same_answer, history.difference = compare(keepers["off"].first, keepers["on"].first)
        history.answer_stable = all(keeper.stable for keeper in keepers.values())
        history.floor_same_answer, floor_difference = compare(
            keepers["on"].first, keepers["floor"].first
        )
        if floor_difference:
            history.difference = (
                history.difference or f"the floor against all on: {floor_difference}"
            )
    except Exception as exc:
        history.error = error_text(exc)
        progress.note(f"order_history failed: {history.error}")
        progress.note(traceback.format_exc())
    finally:
        history.warnings.extend(restore(hooks.suites, progress))
    return history


def _floor_bytes_match(
    requester: Requester, prepared: Prepared, flags: dict[str, bool], user_id: int
) -> bool:
    """Whether the floor's body is byte for byte the all-on response's (checked once, untimed)."""
    response = requester.client.generic(
        prepared.method,
        prepared.path,
        headers={**prepared.headers, TOGGLE_HEADER: toggles.format_flags(per_request(flags))},
    )
    built = floor.body(user_id=user_id, page_size=PAGE_SIZE, base_url=BASE_URL)
    return not response.streaming and response.content == built

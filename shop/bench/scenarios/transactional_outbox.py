"""200 orders placed for real while the broker is down for 10 s in the middle, with async_tasks
held on, so each order's tasks (the capture and the stock ledger from the placement, the
confirmation email from the capture on the worker) are published on commit (off) or written to
the outbox and relayed (on).

No request can show this: the in-process bench rolls its writes back, and a rolled-back order
publishes nothing either way. So each side is a job (`Scenario.run`, shop/bench/broker_outage.py):
a private broker, a real worker on the payment, inventory and email queues and, on, the relay as
processes of their own, 200 orders on an open-loop schedule of 10 a second from 8 buyer threads,
the broker stopped 5 s in and started 10 s later, then a count of the tasks the worker never did:
captures (no `paid` event), stock ledgers (no ledger rows), confirmations of paid orders. Each is
lost publishing (the broker never took it: what the outbox is for, and what the targets hold it
to) or in delivery (the broker took it and the worker never received it: Celery's Redis
transport can drop a message it popped as the broker went down, outbox or not).

Each run's time is its placements' p95 latency, each placement timed from when it was due: off,
a placement during the outage waits for Celery's publish retries (about 0.6 s) after its commit.
"""

from dataclasses import replace

from shop.bench import broker_outage, holds
from shop.bench.metrics import TASKS_LOST
from shop.bench.samples import Sample
from shop.bench.scenario import Scenario
from shop.bench.targets import Target

PLACEMENTS = 200
RATE = 10.0  # placements a second: 20 s of orders
OUTAGE_START_S = 5.0
OUTAGE_S = 10.0
LOST_PUBLISHING = "tasks_lost_publishing"


def _run(on: bool) -> Sample:
    outcome = broker_outage.run(
        on=on,
        placements=PLACEMENTS,
        rate=RATE,
        outage_start_s=OUTAGE_START_S,
        outage_s=OUTAGE_S,
    )
    figures = broker_outage.summary(outcome)
    sample = Sample(ms=figures["p95_ms"], queries={}, bytes=0, status=200)
    return replace(
        sample,
        # The same on both sides: every order placed and paid; what differs is in the metrics.
        answer={"orders placed": outcome.placed, "failures": outcome.failures[:3]},
        metrics={
            TASKS_LOST: outcome.lost,
            LOST_PUBLISHING: outcome.lost_publishing,
            "tasks_lost_in_delivery": outcome.lost_in_delivery,
            "captures_lost": outcome.lost_by_task[broker_outage.CAPTURE],
            "ledgers_lost": outcome.lost_by_task[broker_outage.LEDGER],
            "confirmations_lost": outcome.lost_by_task[broker_outage.CONFIRMATION],
            "tasks_duplicated": outcome.duplicates,
            "tasks_lost_logged": outcome.lost_logged,
            "placement_p50_ms": round(figures["p50_ms"], 1),
            "placement_during_outage_p50_ms": round(figures["outage_p50_ms"], 1),
            "settle_timed_out": int(outcome.settle_timed_out),
        },
    )


SCENARIO = Scenario(
    name="transactional_outbox",
    title=f"{PLACEMENTS} orders, the broker down for {OUTAGE_S:g} s in the middle",
    path=f"JOB {PLACEMENTS} placements at {RATE:g}/s, broker down {OUTAGE_S:g} s",
    run=_run,
    repeat=1,  # a run takes about a minute: the scenario's budget holds one a side
    # Held on so the order's own writes are the same few statements on both sides, and its
    # tasks published (async_tasks) on both: the runner holds async_tasks on itself too.
    hold=holds.TRANSACTIONAL_OUTBOX,
    notes=(
        "Orders commit for real; a private redis-server is the broker, stopped 5 s into the "
        "schedule. Time: each run's p95 placement latency from its intended send time. A task "
        "lost is one the worker never did: an order never paid (its capture), one with no "
        "stock ledger rows, a paid one never confirmed."
    ),
    targets=(
        Target(f"on.metrics.{LOST_PUBLISHING}.total", at_most=0, label="lost publishing, on"),
        Target("on.metrics.tasks_duplicated.total", at_most=0, label="done twice, on"),
        Target(f"off.metrics.{LOST_PUBLISHING}.total", at_least=1, label="lost publishing, off"),
    ),
)

"""transactional_outbox under load: users placing orders while the confirmation task is published
on commit (off) or written to the outbox in the order's transaction (on), for the relay
(`manage.py outbox_relay`, the Procfile's `relay` line) to publish
(shop/bench/scenarios/transactional_outbox.py; bulk_writes, algorithmic_complexity and
short_transactions held on as in the bench).

With the broker up, this shows what the outbox costs a placement: an INSERT and a NOTIFY in the
order's transaction in place of a publish after it. The tasks lost to a broker outage are the
bench's to show (it stops a broker of its own); to see them here, stop the broker during a run
and count the orders without a `confirmation_sent` event. Each order is cancelled at once (a
request of its own in the stats), and a process places at most LOADTEST_MAX_ORDERS orders
(default 200): see OrderingUser.
"""

from locust import task

from loadtests.common import OrderingUser
from shop.bench import holds


class TransactionalOutboxUser(OrderingUser):
    technique = "transactional_outbox"
    lines = 1
    hold = holds.TRANSACTIONAL_OUTBOX

    @task
    def place_order(self) -> None:
        self.order_and_cancel()

"""Keep the slow outside call out of the transaction, so row locks last milliseconds, not the
payment gateway's round trip.

Placing an order takes stock (UPDATE on each variant's row, which locks it until commit) and
charges the customer at the payment gateway (shop/payment_gateway.py), a call of 100-300 ms to
another company's servers.

Off: the code a team writes first. One `transaction.atomic()` around everything: reserve the
stock, write the order, call the gateway, record the payment, commit. The variant rows stay
locked during the call, so every other buyer of the same item queues behind it: with a 200 ms
gateway, one item sells at most 5 orders a second whatever the hardware. When the gateway fails
or times out, the transaction rolls back: no order is left, and the locks were held for the
whole timeout. The connection sits "idle in transaction" all that time.

On: three steps. (1) A short transaction reserves the stock and writes the order as `placed`,
with a `pending` payment, and commits: the locks are released. (2) The gateway is called with
no transaction open. (3) A second short transaction records the answer: the order `paid`, or,
when the charge failed or timed out, the stock given back, the order `payment_failed`, the
payment `failed` and an event saying why. The customer gets the same answer as with one transaction:
201 with the paid order, or a 402/502/504 that says what happened. What changes: between (1)
and (3) the order is visible as `placed` (the order history shows it), and a crash between
them leaves a `placed` order whose stock is taken: a sweeper (the queue work) finishes it.
"""

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

from django.db import transaction

from shop import toggles

TOGGLE = toggles.register(
    "short_transactions",
    group="replicas",
    description="call the payment gateway outside the transaction that holds the stock locks",
)

Placement = TypeVar("Placement")
Payment = TypeVar("Payment")
Charge = TypeVar("Charge")


def place(
    *,
    reserve: Callable[[], tuple[Placement, Payment | None]],
    charge: Callable[[Payment], Charge],
    record: Callable[[Payment, Charge], None],
    give_back: Callable[[Payment, Exception], None],
    atomic: Callable[[], AbstractContextManager] = transaction.atomic,
) -> Placement:
    """Reserve, charge, record. `reserve` returns (the placement, the payment to charge), or
    (placement, None) when there is nothing to charge (an idempotent replay). `charge` raises
    PaymentError (shop/payment_gateway.py) when no money was taken; `give_back` undoes the
    reservation then, and after any other error, so no order is ever left half-written.
    `atomic` opens the transaction that reserves (inventory_locking's, for its isolation)."""
    if not toggles.is_enabled(TOGGLE.name):
        return _naive(reserve=reserve, charge=charge, record=record, atomic=atomic)
    return _optimized(
        reserve=reserve, charge=charge, record=record, give_back=give_back, atomic=atomic
    )


def _naive(*, reserve, charge, record, atomic):
    # If the commit fails after the charge (a serialization failure, a dropped connection),
    # the money is taken and the order is not: another cost of calling out inside.
    with atomic():
        placement, payment = reserve()  # the variant rows are locked from here ...
        if payment is not None:
            # ... through the gateway's round trip: every buyer of these items waits on it.
            # A PaymentError rolls everything back: no order, no payment, stock untouched.
            record(payment, charge(payment))
    return placement  # ... to the commit


def _optimized(*, reserve, charge, record, give_back, atomic):
    with atomic():
        placement, payment = (
            reserve()
        )  # stock taken, order `placed`, payment `pending`; locks freed
    if payment is None:
        return placement
    try:
        result = charge(payment)  # no transaction open, no row locked
    except Exception as exc:
        with transaction.atomic():
            give_back(payment, exc)  # stock back, order payment_failed, event why
        raise
    with transaction.atomic():
        record(payment, result)  # order paid, payment captured
    return placement

"""Ask the shipping carriers for quotes all at once, so the customer waits for the slowest one
instead of all of them in turn.

A shipping estimate needs a quote from each carrier (shop/carriers.py): three HTTP calls to
other companies' servers, each 100-300 ms of waiting on a socket and nothing else.

Off: the code a team writes first, a sync view asking each carrier in turn. The waits add up:
100 + 200 + 300 ms is 600 ms before the answer can go out, and a fourth carrier would add its own.
It runs exactly as Django runs a sync view under ASGI: in a worker thread
(`sync_to_async(thread_sensitive=True)`), which blocks on each socket in turn.

On: the view is async and sends the three requests at once with `asyncio.gather` and an async
HTTP client (httpx), each under its own time limit. The waits overlap: the answer goes out after
the slowest carrier, about 300 ms, and a fourth carrier adds nothing unless it is slower. No
thread blocks while the carriers think.

Both sides give the same answer: the quotes of the carriers that answered, in the order of
settings.SHIPPING_CARRIERS, and the carriers that did not, each with why (a timeout, a refused
connection, an error answer). One carrier's trouble costs its quote, not the page.
"""

import asyncio

import httpx
from asgiref.sync import sync_to_async

from shop import carriers, toggles

TOGGLE = toggles.register(
    "async_io",
    group="queues",
    description="ask the carriers for quotes at once (asyncio.gather, a timeout each)",
)


async def quotes(*, destination: carriers.Destination, weight_grams: int) -> list[carriers.Result]:
    """Every configured carrier's quote or failure, in settings.SHIPPING_CARRIERS' order."""
    if not toggles.is_enabled(TOGGLE.name):
        # What Django does with a sync view under ASGI; thread_sensitive as it does, so the
        # naive code runs in the request's one sync thread, as a sync view's ORM calls would.
        return await sync_to_async(_naive, thread_sensitive=True)(
            destination=destination, weight_grams=weight_grams
        )
    return await _optimized(destination=destination, weight_grams=weight_grams)


def _naive(*, destination: carriers.Destination, weight_grams: int) -> list[carriers.Result]:
    with httpx.Client(**carriers.client_options()) as client:
        return [
            # Each call waits for its answer before the next is sent: the latencies add up.
            carriers.quote(
                client, carrier=name, url=url, destination=destination, weight_grams=weight_grams
            )
            for name, url in carriers.configured().items()
        ]


async def _optimized(
    *, destination: carriers.Destination, weight_grams: int
) -> list[carriers.Result]:
    # One client for the request: its connection pool must live on this event loop.
    async with httpx.AsyncClient(**carriers.client_options()) as client:
        # All sent before any answer is awaited; each call has its own limit and turns its
        # errors into a Failure, so gather never cancels the others for one carrier's trouble.
        return await asyncio.gather(
            *(
                carriers.aquote(
                    client,
                    carrier=name,
                    url=url,
                    destination=destination,
                    weight_grams=weight_grams,
                )
                for name, url in carriers.configured().items()
            )
        )

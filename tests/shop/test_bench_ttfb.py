"""The bench's time to first byte: when a client has the first chunk of a streamed body, and the
whole time for a plain one. A ticking clock stands in for `perf_counter`, so the order of events
is asserted, never a duration."""

import copy
from itertools import count

import pytest
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path

from shop.bench import docs, measure
from shop.bench.measure import Prepared, Requester, send
from shop.bench.samples import Sample, Side
from shop.bench.scenario import Call

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

# When the fake clock was read: by the bench (`measure.perf_counter`) and by the views below.
ticks: list[int] = []
asked: list[int] = []
_clock = count(1)


def tick() -> int:
    ticks.append(next(_clock))
    return ticks[-1]


def streamed(request):
    def chunks():
        for chunk in (b"id,total\n", b"1,9.99\n", b"2,4.50\n"):
            asked.append(tick())  # when the client asked for this chunk
            yield chunk

    return StreamingHttpResponse(chunks(), content_type="text/csv")


def plain(request):
    return HttpResponse(b"id,total\n1,9.99\n2,4.50\n", content_type="text/csv")


urlpatterns = [path("streamed/", streamed), path("plain/", plain)]


@pytest.fixture
def clock(monkeypatch):
    ticks.clear()
    asked.clear()
    monkeypatch.setattr(measure, "perf_counter", tick)


def _send(url: str):
    requester = Requester()
    try:
        return send(requester, Prepared.of(Call("GET", url), requester), flags={})
    finally:
        requester.close()


def test_a_streamed_body_s_first_byte_is_timed_before_the_rest_is_asked_for(clock):
    sample = _send("/streamed/")
    started = ticks[0]  # send() reads the clock first when it sends the request
    first_byte = started + round(sample.ttfb_ms / 1000)
    assert sample.streamed and sample.bytes == len(b"id,total\n1,9.99\n2,4.50\n")
    # The first chunk was asked for, then its arrival timed, before the second was asked for.
    assert asked[0] < first_byte < asked[1] < asked[2]
    assert sample.ttfb_ms < sample.ms
    assert sample.answer == b"id,total\n1,9.99\n2,4.50\n"  # the whole body is still read


def test_a_plain_body_s_first_byte_is_its_whole_time(clock):
    sample = _send("/plain/")
    assert not sample.streamed
    assert sample.ttfb_ms == sample.ms
    assert sample.answer == b"id,total\n1,9.99\n2,4.50\n"


def test_a_side_reports_its_median_first_byte_time():
    samples = [
        Sample(ms=ms, queries={}, bytes=1, status=200, ttfb_ms=ttfb, streamed=True)
        for ms, ttfb in ((10.0, 1.0), (30.0, 8.0), (20.0, 3.0))
    ]
    data = Side(samples).to_dict()
    assert (data["ttfb_p50_ms"], data["p50_ms"], data["streamed"]) == (3.0, 20.0, True)
    # A sample without one (the SQL floor's) counts its whole time.
    floor = Side([Sample(ms=5.0, queries={}, bytes=1, status=200)]).to_dict()
    assert (floor["ttfb_p50_ms"], floor["streamed"]) == (5.0, False)


def test_the_docs_show_a_first_byte_time_only_for_a_streamed_side():
    data = copy.deepcopy(docs.load())
    (entry,) = [e for e in data["techniques"] if e["name"] == "streaming_export"]
    # The kept run may predate the field: then nothing about the first byte is shown.
    for side in ("off", "on"):
        entry[side].pop("streamed", None)
        entry[side]["ttfb_p50_ms"] = entry[side]["p50_ms"]
    assert "first byte" not in docs.render("streaming_export", data)
    assert "first byte" not in docs.render("table", data)

    entry["on"].update(streamed=True, ttfb_p50_ms=1.25)
    entry["off"]["streamed"] = False
    chapter = docs.render("streaming_export", data)
    off_p50 = docs.ms(entry["off"]["p50_ms"])
    assert f"| time to first byte, p50 | {off_p50} ms | 1.25 ms |" in chapter
    assert "(first byte 1.25 ms)" in docs.render("table", data)
    assert "ttfb" not in docs.render("table", data)  # not a generic column of its own

"""The HTML report of the HTTP modes: drawn from the run's own data (a closed-loop pair against
a tiny real server on loopback, an open-loop result), every value escaped."""

from html.parser import HTMLParser

from shop.bench import http, http_html, open_loop
from shop.bench.discovery import Suite
from shop.bench.scenario import Call, Scenario
from tests.http_stub import Reply, Request, serve

HOSTILE = "<script>alert(1)</script>"
MACHINE = {"cpu_count": 2, "load_average_1m": 0.5, "python": "3", "django": "5", "postgres": "15"}


def _context(**data) -> dict:
    return {
        "started_at": "2026-01-01T00:00:00+00:00",
        "settings_module": "config.settings.loadtest",
        "machine": MACHINE,
        **data,
    }


class _Texts(HTMLParser):
    """The page as a reader sees it: its text, and the tags it really has."""

    def __init__(self):
        super().__init__()
        self.text, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> _Texts:
    parsed = _Texts()
    parsed.feed(page)
    return parsed


def _pair_data() -> dict:
    """A real closed-loop pair whose sides answer differently, under a hostile title."""

    def reply(request: Request) -> Reply:
        side = request.headers.get("X-Perf-Toggles", "").removeprefix("select_related=")
        return Reply(body={"name": HOSTILE if side == "on" else "plain"})

    scenario = Scenario(name="select_related", title=HOSTILE, call=lambda: Call("GET", "/x"))
    with serve(reply) as (url, _):
        (pair,) = http.run_suite(
            url,
            Suite(name="select_related", scenarios=[scenario]),
            clients=2,
            requests_per_side=10,
            out=lambda line: None,
        )
    pair.off.db_queries = HOSTILE  # what a server sends back is escaped too
    return pair.as_dict()


def test_the_closed_loop_page_shows_each_side_s_percentiles_rate_errors_and_answer_check():
    data = _pair_data()
    page = http_html.render(_context(mode="http", pairs=[data]))
    parsed = _parse(page)
    text = "".join(parsed.text)
    assert "script" not in parsed.tags  # escaped, not run
    assert HOSTILE in text  # and still readable as text
    assert text.count(HOSTILE) >= 3  # the title, the difference and X-DB-Queries
    for side in ("off", "on"):
        for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
            assert f"{data[side][key]:.2f}" in text, (side, key)
        assert f"{data[side]['rate_per_s']:.1f}" in text
    assert "answers DIFFERENT" in text
    assert f"Answers differ: {data['difference']}" in text
    assert "X-DB-Queries (server)" in text and "timeouts" in text
    assert page.count("<svg") == 1


def test_the_open_loop_page_shows_the_rate_achieved_against_the_rate_asked_and_percentiles():
    with serve(lambda request: Reply(status=500 if request.index == 2 else 200)) as (url, _):
        result = open_loop.run(f"{url}/x?q={HOSTILE}", rate=50, duration_s=0.2, warmup_s=0)
    data = _context(mode="open-loop", target=HOSTILE, **result.as_dict())
    parsed = _parse(http_html.render(data))
    text = "".join(parsed.text)
    assert "script" not in parsed.tags and HOSTILE in text
    assert "asked: 50/s" in text and f"achieved: {result.achieved_rate:.1f}/s" in text
    assert "1 (10.0%): HTTP 500: 1" in text
    for value in (result.p50_ms, result.p90_ms, result.p99_ms, result.max_ms):
        assert f"{value:.2f} ms" in text

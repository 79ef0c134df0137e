"""Load goes to this machine only: the bench's HTTP modes and the Locust scenarios send traffic to
loopback addresses and nowhere else. Plain Python, importable without Django's set-up (Locust)."""

import ipaddress
from urllib.parse import urlsplit

from urllib3.util import parse_url


def _is_loopback(host: str | None) -> bool:
    host = (host or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Whether every parser that may read `url` takes it to a loopback host.

    The standard library and urllib3 (the clients' parser) can disagree on a crafted URL:
    `http://example.com\\@127.0.0.1/` is 127.0.0.1 to `urlsplit` and example.com to urllib3. So
    both must agree that the host is loopback, and a URL with user info or a backslash, which
    is where they disagree, is refused outright.
    """
    if "\\" in url:
        return False
    try:
        parsed = parse_url(url)
        split = urlsplit(url)
    except ValueError:
        return False
    if parsed.auth or split.username is not None:
        return False
    return _is_loopback(parsed.host) and _is_loopback(split.hostname)

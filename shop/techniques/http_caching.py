"""Answer a client's "has it changed?" with 304 Not Modified, decided before the view runs.

Off: the code a team writes first. Every GET of a catalog page runs the view (authentication,
queries, serialization) and sends the whole body, although the client fetched the same bytes a
minute ago; nothing tells a browser or a CDN whether, or for how long, it may keep them.

On, for the catalog reads listed in SCOPES:

- **A cheap validator.** A page's version is made of a few tokens in Redis: `catalog` (what
  every page shows: category and brand names, the tree), `lists` (what list pages show) and
  `product:<id>` (one product's page). Every write that changes a page sets the tokens it
  affects to the clock, *after its transaction commits* (`changed_on_commit`). The ETag is a
  hash of the tokens, the URL (scheme, host, path and query: the pagination links show the
  host) and the Accept header, keyed with a key derived from SECRET_KEY (`_etag_key`): the
  inputs are guessable, and only a 200 may hand an ETag out. Last-Modified is the newest
  token's time. Reading them is one MGET: no query, no rendering.
- **Tokens start on a read.** An absent `catalog` or `lists` is started at the clock by the
  read that finds it absent, before the view reads the rows. A `product:<id>` is started only
  after a 200 of that product's page: any id can be asked for, and a missing product gets
  neither a Redis key nor a validator. That first 200 carries no ETag (its body was read
  before the token existed: see `start`); the next read of the page gets one.
- **The 304 skips the view.** `process_view` runs after the URL is resolved and before the
  view: when If-None-Match lists an ETag that matches, Django's `get_conditional_response`
  answers 304 there (RFC 9110 §13.2.2, the code `@condition` uses), and the view, DRF's
  authentication (the token query) and the serializer never run. An ETag is only handed out
  on a 200 of its URL, so the page exists and its query is valid. Its credentials are not
  checked: a request with a bad `Authorization: Token ...` gets the 304 where the view would
  answer 401, which is why only public pages (SCOPES, the same for everyone) are decided
  here. If-Modified-Since alone, and `If-None-Match: *`, would match a missing page or a bad
  query as well: those go to the view, and its 200 becomes the 304 (the bytes saved, not the
  work). This is what
  `django.views.decorators.http.condition(etag_func=..., last_modified_func=...)` does per
  view; a middleware does it for the SCOPES list, so the views stay as they are.
- **Cache-Control.** Catalog pages: `public, max-age=30, must-revalidate`. A browser or a CDN
  may show a page up to 30 s old without asking (the staleness the shop accepts on a catalog
  page: an order checks the real stock anyway), and after that must revalidate, even if the
  server is unreachable, instead of showing a stale price. Private pages (orders, staff, auth,
  the browsable API's HTML, which shows who is logged in): `private, no-store`, so no shared
  cache keeps them and no browser writes them to disk.

Django's `ConditionalGetMiddleware` is the comparison: it hashes the *rendered* body, so the
304 saves the bytes but the view has done all its work. `HTTP_CACHING_VALIDATOR=rendered`
runs it in this middleware's place (the bench's third arm); the chapter puts the three side
by side.

**No stale 304.** The token is set after the commit, and read before the view reads the rows,
so a response's ETag is never newer than its body: at worst a body newer than its ETag, whose
next revalidation is a 200. Every write that changes a catalog page already reports it for
cache_aside, through `catalog.payloads.*_changed_on_commit` (the services: a price, stock taken
or given back by orders, a review, a product or a category moved, the import; and the admin's
edits); those call `changed_on_commit` here too, so the two caches of a page go together.
tests/techniques/test_http_caching.py checks each kind of write.

**Settling.** A page read right after a change may still be built from the rows before it: the
replica has not replayed the commit yet, or another process's local_cache holds the old
category tree. An ETag then would pair the new version with the old body, and the client would
get 304s for a stale page until the next change. So a page gets no validator while a token it
depends on is younger than those bounds (`settle_ns`); it is a plain 200 until the change has
settled everywhere.

**Redis down.** No token, no validator: the page is a plain 200 without ETag, never a 500 and
never a 304. A bump lost to an outage leaves an old token for at most TOKEN_TTL_S: each token
expires, and one created afresh starts at the clock, a value no ETag was made from.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.middleware.http import ConditionalGetMiddleware
from django.utils.cache import get_conditional_response, patch_vary_headers
from django.utils.http import http_date, parse_etags
from rest_framework.authentication import get_authorization_header

from shop import cache, toggles
from shop.authentication import TokenAuthentication
from shop.techniques import write_behind

TOGGLE = toggles.register(
    "http_caching",
    group="caching",
    description="ETag/Last-Modified from a validator in Redis: 304 before the view; Cache-Control",
)

# The catalog reads that carry validators, by URL name, and the tokens their version is made
# of. "product" is the token of the URL's product_id. A new public read is one line here.
SCOPES: dict[str, tuple[str, ...]] = {
    "catalog:product-list": ("catalog", "lists"),
    "catalog:product-detail": ("catalog", "product"),
    "catalog:category-tree": ("catalog",),
    "catalog:category-products": ("catalog", "lists"),
}


# What a page's view does besides building it, that its 304 must do too: a product page
# revalidated is a view of it all the same (write_behind counts it; one HINCRBY with it on).
def _count_product_view(view_kwargs: dict) -> None:
    write_behind.count_view(product_id=view_kwargs["product_id"])


ON_NOT_MODIFIED = {"catalog:product-detail": _count_product_view}

# Pages that show one user's data, a secret, or a form: `private, no-store`. By view name, a
# prefix ending in ":" is a whole namespace.
PRIVATE = ("orders:", "catalog:product-import", "auth-token", "rest_framework:", "shop:")

MAX_AGE_S = 30
PUBLIC_CACHE_CONTROL = f"public, max-age={MAX_AGE_S}, must-revalidate"
PRIVATE_CACHE_CONTROL = "private, no-store"
# How long a token lives without a write. Bounds the staleness of a bump lost to a Redis
# outage; costs every client one full 200 per page each time a token is renewed.
TOKEN_TTL_S = 300
# Bump when the responses' shape changes: a deploy must not answer 304 to an ETag of the old.
VALIDATOR_VERSION = 1


# Pages built with the category tree local_cache keeps in each process (the list's
# ?category= filter): up to LOCAL_CACHE_CATEGORY_TTL_S old in a process that did not make the
# change.
READS_LOCAL_CATEGORY_TREE = ("catalog:product-list",)


@dataclass(frozen=True)
class Validator:
    # Weak: compression changes the bytes, never the meaning. None: settling, or not started.
    etag: str | None
    last_modified: int | None  # seconds; None within the second of the newest change
    unstarted: tuple[str, ...] = ()  # product tokens the page's first 200 starts


# --- the tokens -------------------------------------------------------------------------------


def _key(token: str) -> str:
    return cache.key("http-validator", token, version=VALIDATOR_VERSION)


def _starts_when_read(name: str) -> bool:
    """`catalog` and `lists` are two keys, started by the first read of a page. A product's
    token is started only after a 200 of its page (`start`): anyone can ask for any id, and a
    missing product must get neither a Redis key nor a validator."""
    return not name.startswith("product:")


def tokens(names: Iterable[str]) -> list[int | None] | None:
    """The tokens' values (nanoseconds of their last change), one MGET. An absent `catalog`
    or `lists` is started at the clock; an absent product token is None. None when Redis
    does not answer."""
    names = list(names)
    keys = [_key(name) for name in names]
    found = cache.get_many(keys)
    for name, key in zip(names, keys, strict=True):
        if key not in found and _starts_when_read(name):
            if cache.add(key, time.time_ns(), timeout=TOKEN_TTL_S) is None:
                return None  # Redis down: shop.cache logged it
            found = cache.get_many(keys)  # ours, or the one a concurrent request added first
    if any(
        key not in found for name, key in zip(names, keys, strict=True) if _starts_when_read(name)
    ):
        return None
    return [found.get(key) for key in keys]


def start(names: Iterable[str]) -> None:
    """Start absent tokens at the clock, after a 200 of their page; one present (a write's)
    is left as it is. That 200 gets no ETag: its body was read before the token existed, and
    a write committed in between would make the ETag name the new version with the old body.
    The next read of the page reads the token first, as every read does."""
    for name in names:
        cache.add(_key(name), time.time_ns(), timeout=TOKEN_TTL_S)


def bump(names: Iterable[str]) -> None:
    """Move the tokens to the clock now: every ETag made from them stops matching."""
    now = time.time_ns()
    cache.set_many({_key(name): now for name in names}, timeout=TOKEN_TTL_S)


def changed_on_commit(
    *,
    product_ids: Iterable[int] = (),
    lists: bool = False,
    everything: bool = False,
    using: str = DEFAULT_DB_ALIAS,
) -> None:
    """After the current transaction commits (at once outside one): the pages of
    `product_ids`, every list page with `lists`, and every page with `everything` (a category
    or a brand renamed or moved) get new validators. Whatever the toggle: a change made while
    it is off must not leave a token that turning it on would answer 304 with."""
    names = [f"product:{pk}" for pk in sorted(set(product_ids))]
    if lists:
        names.append("lists")
    if everything:
        names.append("catalog")
    if names:
        transaction.on_commit(lambda: bump(names), using=using)


# --- the request ------------------------------------------------------------------------------


def settle_ns(name: str, token: str) -> int:
    """How long after a change of `token` the page `name`, built now, may still show the rows
    from before it: a read of the replica sees every write older than READ_REPLICA_PIN_SECONDS
    (read_replica.py says why), and local_cache's tree in another process is up to its TTL old.
    An ETag on such a page would name the new version with the old body, and the client would
    get 304s for a stale page until the next change: until then the page gets no validator."""
    settle = 0.0
    if settings.READ_REPLICA_DATABASE and toggles.is_enabled("read_replica"):
        settle = float(settings.READ_REPLICA_PIN_SECONDS)
    if (
        token == "catalog"
        and name in READS_LOCAL_CATEGORY_TREE
        and toggles.is_enabled("local_cache")
    ):
        settle = max(settle, settings.LOCAL_CACHE_CATEGORY_TTL_S)
    return int(settle * 1_000_000_000)


@lru_cache(maxsize=1)
def _etag_key(secret: str) -> bytes:
    """The ETag hash's key. The inputs (tokens are nanosecond timestamps, Last-Modified gives
    their second; the URL; Accept) can be guessed: unkeyed, a client could compute the ETag of
    a page it never fetched, and the early 304 relies on an ETag coming from a 200."""
    return hashlib.sha256(b"http_caching" + secret.encode()).digest()


def validator(request, scope: tuple[str, ...], view_kwargs: dict) -> Validator | None:
    """The page's validator from its tokens, or None when Redis does not answer."""
    names = [f"product:{view_kwargs['product_id']}" if n == "product" else n for n in scope]
    values = tokens(names)
    if values is None:
        return None
    unstarted = tuple(name for name, value in zip(names, values, strict=True) if value is None)
    if unstarted:  # a product page never served yet, or missing: no validator
        return Validator(etag=None, last_modified=None, unstarted=unstarted)
    now, page = time.time_ns(), view_name(request)
    if any(now - value < settle_ns(page, name) for name, value in zip(names, values, strict=True)):
        return Validator(etag=None, last_modified=None)  # a change still settling: no validator
    identity = (
        VALIDATOR_VERSION,
        settings.CACHE_SCHEMA_VERSION,
        values,
        request.build_absolute_uri(),  # the pagination links name the host
        request.headers.get("Accept", ""),
    )
    digest = hashlib.blake2b(
        repr(identity).encode(), digest_size=12, key=_etag_key(settings.SECRET_KEY)
    ).hexdigest()
    newest = max(values) // 1_000_000_000
    # A second-resolution date can only say "not modified" of a second that is over: a change
    # later in this same second would have the same Last-Modified.
    return Validator(
        etag=f'W/"{digest}"', last_modified=newest if newest < now // 1_000_000_000 else None
    )


def view_name(request) -> str:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else ""


def _is_private(view_name: str) -> bool:
    return any(
        view_name.startswith(prefix) if prefix.endswith(":") else view_name == prefix
        for prefix in PRIVATE
    )


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _public_headers(response, found: Validator | None) -> None:
    if found is not None and found.etag is not None:
        response["ETag"] = found.etag
        if found.last_modified is not None:
            response["Last-Modified"] = http_date(found.last_modified)
    response["Cache-Control"] = PUBLIC_CACHE_CONTROL
    # DRF adds Accept to its 200s (it negotiates the renderer); a 304 must say the same.
    patch_vary_headers(response, ["Accept"])


def _reads_the_session(request) -> bool:
    """Whether the view's authentication would read the session, which makes Django's
    session middleware add `Vary: Cookie` to the 200: a session cookie is sent and no token
    (TokenAuthentication runs first; a token that authenticates leaves the session unread, and
    one that does not is a 401, never a 200)."""
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False
    words = get_authorization_header(request).split()
    return not words or words[0].lower() != TokenAuthentication.keyword.lower().encode()


def _without_unmodified_since(request, last_modified):
    """The request as Django's conditional code must see it: If-Unmodified-Since left out when
    the page has no Last-Modified (within the second of a change, or the rendered validator's
    pages). RFC 9110 §13.1.4 says to ignore it then; Django answers it 412 whatever the date
    (its `_if_unmodified_since_passes` needs a Last-Modified), where the technique off answers 200."""
    if last_modified is not None or "HTTP_IF_UNMODIFIED_SINCE" not in request.META:
        return request
    stripped = copy.copy(request)
    stripped.META = {k: v for k, v in request.META.items() if k != "HTTP_IF_UNMODIFIED_SINCE"}
    return stripped


class Middleware:
    """Listed innermost: its process_view runs once the URL is resolved, just before the view,
    so a 304 costs the middleware above it and one Redis round trip."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not toggles.is_enabled(TOGGLE.name):
            return response  # naive: no validators, no Cache-Control
        name = view_name(request)
        if name in SCOPES and request.method in ("GET", "HEAD"):
            found = getattr(request, "_http_validator", None)
            if response.status_code == 200 and found is not None and found.unstarted:
                start(found.unstarted)  # the page exists: its next read gets a validator
            if response.status_code == 200 and _is_json(response):
                if settings.HTTP_CACHING_VALIDATOR == "rendered":
                    _public_headers(response, None)
                    # Django's: hash the body just rendered, 304 if it matches.
                    return ConditionalGetMiddleware(lambda _request: response)(
                        _without_unmodified_since(request, response.get("Last-Modified"))
                    )
                _public_headers(response, found)
                if found is not None and found.etag is not None:
                    # What process_view left to the view (If-Modified-Since alone, `*`): now
                    # that the page is known to exist, its 200 may be a 304. The view has run
                    # and done what ON_NOT_MODIFIED would (counted the product view).
                    return get_conditional_response(
                        _without_unmodified_since(request, found.last_modified),
                        etag=found.etag,
                        last_modified=found.last_modified,
                        response=response,
                    )
            elif response.status_code == 200:
                # The browsable API's HTML: it shows who is logged in and carries a CSRF token.
                response["Cache-Control"] = PRIVATE_CACHE_CONTROL
        elif _is_private(name) and not response.has_header("Cache-Control"):
            response["Cache-Control"] = PRIVATE_CACHE_CONTROL
            patch_vary_headers(response, ["Authorization", "Cookie"])
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        scope = SCOPES.get(view_name(request))
        if (
            scope is None
            or request.method not in ("GET", "HEAD")
            or settings.HTTP_CACHING_VALIDATOR != "token"
            or not toggles.is_enabled(TOGGLE.name)
        ):
            return None
        found = validator(request, scope, view_kwargs)
        request._http_validator = found
        if found is None or found.etag is None:
            return None  # Redis down, a change settling, a product not started: a plain 200
        # Only an ETag the client holds decides before the view: it was handed out on a 200
        # of this very URL, so the page exists and its query was valid. Not that the request's
        # credentials are: a bad token gets this public page's 304, not a 401. If-Modified-Since
        # alone or `*` match any page, a missing one or a bad query too: the view decides,
        # and __call__ turns its 200 into the 304.
        etags = parse_etags(request.headers.get("If-None-Match", ""))
        if not etags or "*" in etags:
            return None
        answer = get_conditional_response(
            _without_unmodified_since(request, found.last_modified),
            etag=found.etag,
            last_modified=found.last_modified,
        )
        if answer is None or answer.status_code != 304:
            return None  # a failed If-Match or If-Unmodified-Since: decided on the view's 200
        _public_headers(answer, found)  # the view never runs
        if _reads_the_session(request):
            patch_vary_headers(answer, ["Cookie"])  # as the 200 would (RFC 9110 §15.4.5)
        if done := ON_NOT_MODIFIED.get(view_name(request)):
            done(view_kwargs)
        return answer

"""Send fewer bytes: compress a response with the best coding the client accepts.

Off: the code a team writes first. Every body leaves as it was rendered (identity). JSON is
verbose, the same keys on every row, so a 50-product page crosses the network at several times
the size it needs.

On, for each response:

1. **Negotiate** (`negotiate`): the client's `Accept-Encoding`, q-values included (RFC 9110
   §12.5.3). Of the codings it accepts (q > 0), the highest q wins, and a tie goes to the
   server's order, PREFERENCE: brotli, then zstd, then gzip. `identity;q=0`, `*;q=0`, an
   absent or malformed header: a malformed one, or one that accepts nothing we have, gets
   identity, never a 406 (which no client handles).
2. **Skip what does not pay** (`compressible`): a body under MIN_BYTES (the response fits one
   TCP segment anyway, and the smallest lose bytes to the coding's framing); a streamed body
   (streaming_export's CSV: compressing it here would buffer it or cut its chunks); a body that
   already has a Content-Encoding; a type that is already compressed (images, archives).
3. **Never where it leaks a secret** (`breach_exposed`, the chapter explains BREACH): a
   response that carries a secret next to input an attacker controls, to a client whose
   browser an attacker can make send requests with its cookies. Refused: the auth token
   endpoint (its body is the secret), any HTML (the browsable API's and the admin's pages carry
   a CSRF token and show the user), any page that used the CSRF token, and any private page
   requested with a session cookie. Public catalog pages hold no secret: compressed always.
4. **Compress, label, measure**: Content-Encoding, Content-Length, `Vary: Accept-Encoding` (on
   every response that could have been compressed, so a cache never serves gzip to a client
   that did not ask), a strong ETag made weak (the bytes changed, the meaning did not), and
   `Server-Timing: compress;dur=<CPU ms>` with the CPU the coding took.

Django's `GZipMiddleware` does step 4 with gzip only, at a 200-byte threshold, compresses
streams chunk by chunk, and leaves BREACH to the reader; its docs warn about it.
"""

from __future__ import annotations

import gzip
import time

import brotli
import zstandard
from django.conf import settings
from django.utils.cache import patch_vary_headers

from shop import toggles
from shop.techniques import http_caching

TOGGLE = toggles.register(
    "compression",
    group="caching",
    description="brotli, zstd or gzip by Accept-Encoding; tiny, streamed and BREACH-prone skipped",
)

# Below this, identity. Measured on this API's JSON with zlib level 6 (the medium data): a
# 323-byte one-product page saves 74 bytes with gzip, 50 more than the Content-Encoding header
# it adds; a 1,255-byte five-product page saves 58-62 %. But under 1 kB the whole response,
# its ~400 bytes of headers included, fits one 1448-byte TCP segment either way: the saving
# buys no round trip, only CPU. Django's GZipMiddleware compresses from 200 bytes.
MIN_BYTES = 1024
# Levels for bodies rendered per request, not for static files compressed once. The 50-row
# product list (11.6 kB): brotli 5 → 2,730 bytes in 0.15 ms of CPU, brotli 11 → 2,290 bytes in
# 15 ms (100x the CPU for 16 % fewer bytes); gzip 6 → 2,995 in 0.09 ms; zstd 3 → 3,034 in
# 0.05 ms.
BROTLI_QUALITY = 5
ZSTD_LEVEL = 3
GZIP_LEVEL = 6
# The server's order when the client's q-values tie: smallest output first.
PREFERENCE = ("br", "zstd", "gzip")
_ALIASES = {"x-gzip": "gzip"}
COMPRESSIBLE_TYPES = (
    "application/json",
    "application/problem+json",
    "application/vnd.oai.openapi",
    "application/javascript",
    "application/xml",
    "text/csv",
    "text/plain",
    "text/css",
    "text/javascript",
    "image/svg+xml",
)
# Responses that are never compressed, by view name: the token endpoint's body is the secret.
NEVER = ("auth-token",)

_zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL)


def _gzip(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def _brotli(body: bytes) -> bytes:
    return brotli.compress(body, quality=BROTLI_QUALITY)


def _zstd_compress(body: bytes) -> bytes:
    return _zstd.compress(body)


CODERS = {"br": _brotli, "zstd": _zstd_compress, "gzip": _gzip}


def negotiate(header: str | None) -> str | None:
    """The coding to send for this Accept-Encoding, or None for identity.

    `"gzip, br;q=0.9"` → "gzip"; `"br, gzip"` → "br" (a tie: PREFERENCE); `"*"` → "br";
    `"gzip;q=0"` → None; `"identity"` → None; `"gzip;q=abc"` → None (malformed)."""
    if not header or not header.strip():
        return None
    weights: dict[str, float] = {}
    for part in header.split(","):
        coding, *params = (piece.strip() for piece in part.split(";"))
        coding = _ALIASES.get(coding.lower(), coding.lower())
        if not coding:
            continue
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() != "q":
                continue
            try:
                weight = float(value.strip())
            except ValueError:
                return None
            if not 0.0 <= weight <= 1.0:
                return None
        weights.setdefault(coding, weight)  # the first mention of a coding counts
    star = weights.get("*")
    # Identity is always acceptable (we never answer 406); it beats a coding only when the
    # client names it with a higher q ("identity, gzip;q=0.5").
    identity = weights.get("identity", 0.0)
    best, best_weight = None, 0.0
    for coding in PREFERENCE:
        weight = weights.get(coding, star if star is not None else 0.0)
        if weight > best_weight:
            best, best_weight = coding, weight
    if best is None or identity > best_weight:
        return None
    return best


def compressible(response) -> bool:
    """Whether compressing could pay: a plain body of a compressible type, large enough."""
    if response.streaming or response.has_header("Content-Encoding"):
        return False
    if response.status_code in (204, 206, 304):
        return False
    content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    if not content_type.startswith(COMPRESSIBLE_TYPES):
        return False
    return len(response.content) >= MIN_BYTES


def breach_exposed(request, response) -> bool:
    """Whether the body may hold a secret an attacker could guess by reflecting input into
    the same response and watching its compressed length (BREACH)."""
    view_name = http_caching.view_name(request)
    if view_name in NEVER:
        return True
    if response.get("Content-Type", "").startswith("text/html"):
        return True  # forms with a CSRF token, the logged-in user's name
    if request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
        return True  # the view asked for the CSRF token: it may be in the body
    if view_name in http_caching.SCOPES:
        return False  # a public page: the same bytes for everyone, nothing to steal
    # Cookies are the credentials a cross-site page can make a browser send; a token in an
    # Authorization header it cannot.
    return settings.SESSION_COOKIE_NAME in request.COOKIES


class Middleware:
    """Listed just inside the toggle header's scope, outside every layer that writes the body."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not toggles.is_enabled(TOGGLE.name) or breach_exposed(request, response):
            return response
        if response.status_code == 304:
            # Its 200 varies by Accept-Encoding (RFC 9110 §15.4.5: a 304 carries the same Vary).
            if http_caching.view_name(request) in http_caching.SCOPES:
                patch_vary_headers(response, ["Accept-Encoding"])
            return response
        if not compressible(response):
            return response
        patch_vary_headers(response, ["Accept-Encoding"])
        coding = negotiate(request.headers.get("Accept-Encoding"))
        if coding is None:
            return response
        started = time.process_time()
        body = CODERS[coding](response.content)
        cpu_ms = (time.process_time() - started) * 1000
        if len(body) >= len(response.content):
            return response
        response.content = body
        response["Content-Length"] = str(len(body))
        response["Content-Encoding"] = coding
        etag = response.get("ETag")
        if etag and not etag.startswith("W/"):
            response["ETag"] = "W/" + etag
        timing = f'compress;dur={cpu_ms:.3f};desc="{coding}"'
        earlier = response.get("Server-Timing")
        response["Server-Timing"] = f"{earlier}, {timing}" if earlier else timing
        return response

"""Token authentication: DRF's, with the key checked for shape before it reaches the database."""

import re

from rest_framework import authentication, exceptions

from shop.techniques import local_cache, read_replica

# What DRF's Token model generates: 40 hex digits (binascii.hexlify(os.urandom(20))).
TOKEN_KEY = re.compile(r"[0-9a-f]{40}")


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, refusing a key that no token could have.

    DRF looks any key up as it comes. One holding a NUL byte makes psycopg refuse the query
    (PostgreSQL text cannot contain NUL), and that `DataError` is a 500. A key of the wrong shape
    is refused as an unknown one is, with the same 401, and without a query.

    With read_replica on, the lookup reads the replica, and the user it finds may have written
    a moment ago: then the rest of the request reads the primary.

    The lookup is cached in Redis, and with local_cache on in the process too, for
    LOCAL_CACHE_TOKEN_TTL_S: a token deleted (a logout) in another process keeps working here
    until then (shop/techniques/local_cache.py).
    """

    def authenticate_credentials(self, key):
        if not TOKEN_KEY.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        # Read on the replica, which may not have a token a login created a moment ago: an
        # unknown key is asked of the primary once more before it is refused.
        lookup = super().authenticate_credentials
        user, token = local_cache.token_user(
            key,
            lambda key: read_replica.again_on_primary_if(
                exceptions.AuthenticationFailed, lambda: lookup(key)
            ),
        )
        read_replica.user_identified(user)  # reads the primary if they wrote a moment ago
        return user, token

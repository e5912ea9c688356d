"""DRF token authentication that keeps who a token belongs to, with their permissions,
per process (arena.hotcache): the vote loop authenticates every request, and the token and
permission lookups were three of its queries.

A deleted token, a deactivated account or a changed role bumps a change stamp (in Redis or
the database, whichever process made it, on any host), and every busy process sees it
within ``DUET_ARENA_CACHE_CHECK_SECONDS`` (0.25 s); while the stamps cannot be read, within
``DUET_ARENA_CACHE_SECONDS`` (60 s)."""

import copy

from rest_framework.authentication import TokenAuthentication

from arena.hotcache import Memo

_tokens = Memo(
    "api tokens",
    # A refused token is not kept, so a new token, user or group changes no entry.
    invalidated_by=("authtoken.Token:edited", "auth.User:edited", "auth.Group:edited", "auth.User.groups",
                    "auth.User.user_permissions", "auth.Group.permissions"),
)  # fmt: skip


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate(self, request):
        # DRF reads the header through request.headers, which copies every header of the
        # request into a new mapping; the common case needs one lookup in META. Anything
        # unusual (other schemes, spaces, non-ASCII) goes through DRF's own checks.
        header = request.META.get("HTTP_AUTHORIZATION", "")
        keyword, _, key = header.partition(" ")
        if keyword == self.keyword and key and header.isascii() and " " not in key:
            return self.authenticate_credentials(key)
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        def load():
            user, token = super(CachedTokenAuthentication, self).authenticate_credentials(key)
            user.get_all_permissions()  # fills the user's permission caches, which travel with it
            return user, token

        user, token = _tokens.get(key, load)  # a refused token raises and is not kept
        # Each request gets its own copy: views may set attributes on request.user.
        return copy.copy(user), token

"""DRF token authentication that keeps who a token belongs to, with their permissions,
for a few seconds per process (arena.hotcache): the vote loop authenticates every request,
and the token and permission lookups were three of its queries.

A deleted token, a deactivated account or a changed role takes effect at once in the
process that made the change and within ``DUET_ARENA_CACHE_SECONDS`` in the others."""

import copy

from rest_framework.authentication import TokenAuthentication

from arena.hotcache import Memo

_tokens = Memo(
    "api tokens",
    invalidated_by=("authtoken.Token", "auth.User", "auth.Group", "auth.User.groups", "auth.User.user_permissions",
                    "auth.Group.permissions"),
)  # fmt: skip


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        def load():
            user, token = super(CachedTokenAuthentication, self).authenticate_credentials(key)
            user.get_all_permissions()  # fills the user's permission caches, which travel with it
            return user, token

        user, token = _tokens.get(key, load)  # a refused token raises and is not kept
        # Each request gets its own copy: views may set attributes on request.user.
        return copy.copy(user), token

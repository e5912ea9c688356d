"""State every Duet process shares, on every host: the change stamps that tell processes
their copies are stale (arena.hotcache) and the rate-limit counts (arena.ratelimit).

Both live in Redis when ``DUET_REDIS_URL`` is set, else in these two tables of the
database (SQLite in the embedded setup, so nothing needs installing). Never in a per-host
file or a per-process dict: a web process on another host must see the same counts and
the same stamps. Fields only; the two modules above read and write them.
"""

from __future__ import annotations

import os
import threading

from django.conf import settings
from django.db import models


class ChangeStamp(models.Model):
    """A counter per watched model ("app.Model", "app.Model:edited", "app.Model.field"),
    bumped after each committed change of it."""

    label = models.CharField(max_length=100, primary_key=True)
    n = models.BigIntegerField(default=0)

    class Meta:
        app_label = "arena"


class RateCount(models.Model):
    """Requests counted in the current fixed window of one rate-limit subject."""

    key = models.CharField(max_length=120, primary_key=True)
    window = models.BigIntegerField()
    n = models.IntegerField()
    expires = models.FloatField(db_index=True)

    class Meta:
        app_label = "arena"


_clients: dict[tuple[str, int], object] = {}
_clients_lock = threading.Lock()


def redis_client():
    """This process's client of ``settings.REDIS_URL``, or None where it is not set.
    Short timeouts: a call on the vote path must fail fast when Redis is away."""
    url = settings.REDIS_URL
    if not url:
        return None
    key = (url, os.getpid())  # a forked process opens its own connections
    client = _clients.get(key)
    if client is None:
        import redis

        with _clients_lock:
            client = _clients.setdefault(
                key, redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
            )
    return client

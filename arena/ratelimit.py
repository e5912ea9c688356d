"""Rate limits on the arena's next-comparison and vote endpoints, shared by every process.

Ballot stuffing is cheap when a vote costs a click, so each request is counted against
every subject it comes from: the voter (an account, or a session in the open arena) and
the client's network address. A fresh anonymous session has no history, so the
per-address limit is what holds a script that drops its cookies.

Counts are fixed windows (``120/minute`` allows 120 in each calendar minute; a burst
across a window edge can reach twice that, which is fine for a ceiling on abuse). They
live outside the web process, so four gunicorn workers share one limit:

- ``local`` (the default): an SQLite file in ``DUET_VAR_DIR``, one row per subject,
  incremented with an atomic upsert; every process on this machine sees the same counts.
- ``redis://host:port/db``: Redis ``INCR``, for several web machines.

A refused request gets 429 with the seconds to wait in the message and in ``Retry-After``.
If the counter store itself fails, the request goes through and the failure is logged:
the limits guard against abuse, and a broken cache must never cost a real vote.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import os
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings

from . import errors

logger = logging.getLogger(__name__)

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# Expired rows are pruned on about one hit in this many, so the table stays at roughly the
# number of subjects seen in the longest period and no request pays for a full sweep.
PRUNE_ONE_IN = 2000


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int  # seconds
    unit: str  # "minute", for messages

    @staticmethod
    @lru_cache(maxsize=32)
    def parse(text: str) -> Rate | None:
        """``"120/minute"`` -> Rate(120, 60); ``"off"``, ``"0"`` or ``""`` -> None (no limit)."""
        text = (text or "").strip().lower()
        if text in ("", "0", "off", "none"):
            return None
        count, _, unit = text.partition("/")
        if not count.isdigit() or unit not in PERIODS:
            raise ValueError(f"a rate is N/second, N/minute, N/hour or N/day (or off), got {text!r}")
        return Rate(int(count), PERIODS[unit], unit)


class RateLimitExceeded(errors.RateLimited):
    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


# --- counter stores -------------------------------------------------------------------------


class LocalStore:
    """Counters in an SQLite file: atomic across processes and threads on one machine.

    Counters are not worth an fsync: a crash forgets at most the current window.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread and process; a forked worker opens its own.
        connection = getattr(self._local, "connection", None)
        if connection is None or self._local.pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            # Switching a new file to WAL takes an exclusive lock that SQLite's busy
            # timeout does not always wait for: processes starting together retry.
            for attempt in range(50):
                try:
                    connection.execute("PRAGMA journal_mode=WAL")
                    connection.execute(
                        "CREATE TABLE IF NOT EXISTS hits (key TEXT PRIMARY KEY, window INTEGER NOT NULL, "
                        "n INTEGER NOT NULL, expires REAL NOT NULL)"
                    )
                    break
                except sqlite3.OperationalError as error:
                    if "locked" not in str(error) or attempt == 49:
                        raise
                    time.sleep(0.02 * (1 + attempt % 5))
            connection.execute("PRAGMA synchronous=OFF")
            self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    def hit(self, key: str, window: int, expires: float) -> int:
        """Count one request in ``window`` for ``key``; returns the count so far in it."""
        return self.hit_many([(key, window, expires)])[0]

    def hit_many(self, hits: list[tuple[str, int, float]]) -> list[int]:
        """Count one request for each (key, window, expires) in one statement (one lock
        of the file instead of one per subject); returns the counts in the same order."""
        connection = self._connection()
        rows = ", ".join(["(?, ?, 1, ?)"] * len(hits))
        counts = dict(
            connection.execute(
                f"INSERT INTO hits (key, window, n, expires) VALUES {rows} "
                "ON CONFLICT (key) DO UPDATE SET "
                "n = CASE WHEN hits.window = excluded.window THEN hits.n + 1 ELSE 1 END, "
                "window = excluded.window, expires = excluded.expires RETURNING key, n",
                [value for hit in hits for value in hit],
            ).fetchall()
        )
        if random.random() < 1 / PRUNE_ONE_IN:
            connection.execute("DELETE FROM hits WHERE expires < ?", (time.time(),))
        return [counts[key] for key, _, _ in hits]


class RedisStore:
    """Counters in Redis, for web processes on several machines."""

    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def hit(self, key: str, window: int, expires: float) -> int:
        return self.hit_many([(key, window, expires)])[0]

    def hit_many(self, hits: list[tuple[str, int, float]]) -> list[int]:
        pipeline = self.client.pipeline()
        for key, window, expires in hits:
            window_key = f"{key}:{window}"
            pipeline.incr(window_key)
            pipeline.expireat(window_key, math.ceil(expires) + 1)
        results = pipeline.execute()
        return [int(count) for count in results[::2]]


_stores: dict[str, LocalStore | RedisStore] = {}


def store() -> LocalStore | RedisStore:
    location = settings.RATE_LIMIT_STORE
    remote = location.startswith(("redis://", "rediss://"))
    if not remote:
        location = str(Path(settings.VAR_DIR) / "ratelimit.sqlite3")
    if location not in _stores:
        _stores[location] = RedisStore(location) if remote else LocalStore(Path(location))
    return _stores[location]


# --- subjects -------------------------------------------------------------------------------


def client_address(request) -> str:
    """The client's address as a limit sees it: behind ``DUET_TRUSTED_PROXY_HOPS`` proxies,
    the address the outermost trusted proxy saw; an IPv6 address stands for its /64, since
    one household gets a whole /64 and could otherwise vote from 2^64 addresses."""
    address = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_HOPS
    if hops > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        # Each trusted proxy appends the address it saw; anything further left is the
        # client's own claim and can be forged.
        if len(forwarded) >= hops:
            address = forwarded[-hops]
    return _normalised(address)


@lru_cache(maxsize=4096)
def _normalised(address: str) -> str:
    # Parsed once per address and process: a voter sends many requests.
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _digest(value: str) -> str:
    # Keyed, so the counter store never holds an address or session key a leak could use.
    return _keyed_digest(settings.SECRET_KEY, value)


@lru_cache(maxsize=4096)
def _keyed_digest(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:24]


def _subjects(request, scopes: tuple[str, ...]) -> list[tuple[str, str, Rate, str]]:
    """(key, what the message calls it, rate, noun) for each limit this request counts
    against: the voter's limit of each scope, and the client's once per request."""
    subjects = []
    user = getattr(request, "user", None)
    for scope in scopes:
        voter_rate = Rate.parse({"vote": settings.VOTE_RATE_LIMIT, "next": settings.NEXT_RATE_LIMIT}[scope])
        if voter_rate is None:
            continue
        if user is not None and user.is_authenticated:
            subjects.append((f"{scope}:user:{user.pk}", "this account", voter_rate, NOUNS[scope]))
        else:
            session_key = request.session.session_key if hasattr(request, "session") else None
            if session_key:
                subjects.append((f"{scope}:session:{_digest(session_key)}", "this browser session", voter_rate,
                                 NOUNS[scope]))  # fmt: skip
    client_rate = Rate.parse(settings.CLIENT_RATE_LIMIT)
    if client_rate is not None:
        # One budget for next and vote together: a client's whole arena traffic.
        subjects.append((f"client:{_digest(client_address(request))}", "your network address", client_rate,
                         "requests to the arena"))  # fmt: skip
    return subjects


NOUNS = {"vote": "votes", "next": "requests for a comparison"}


def check(request, scopes: str | tuple[str, ...]) -> None:
    """Count this request against each scope's limits ("vote", "next": a vote that asks
    for the next comparison counts against both); raise RateLimitExceeded (429) when any
    of them is spent."""
    now = time.time()
    subjects = _subjects(request, (scopes,) if isinstance(scopes, str) else tuple(scopes))
    if not subjects:
        return
    hits = []
    for key, _, rate, _ in subjects:
        window = int(now // rate.period)
        hits.append((f"{key}:{rate.period}", window, (window + 1) * rate.period))
    try:
        counts = store().hit_many(hits)
    except Exception:  # noqa: BLE001 - sqlite3, redis or OS errors alike: fail open
        logger.exception("rate-limit store failed; letting the request through")
        return
    refusal: RateLimitExceeded | None = None
    for (_, label, rate, noun), (_, _, window_ends), count in zip(subjects, hits, counts, strict=True):
        if count > rate.limit:
            retry_after = max(1, math.ceil(window_ends - now))
            if refusal is None or retry_after > refusal.retry_after:
                refusal = RateLimitExceeded(
                    f"Too many {noun} from {label}: the limit is {rate.limit} per {rate.unit}. "
                    f"Try again in {retry_after} s.",
                    retry_after,
                )
    if refusal is not None:
        raise refusal


class RateLimitedView:
    """DRF view mixin: ``rate_limit_scope = "vote"`` counts every request to the view
    (after authentication, before the handler) and adds ``Retry-After`` to a refusal;
    a view whose requests count against more scopes says so in `rate_limit_scopes`."""

    rate_limit_scope = ""

    def rate_limit_scopes(self, request) -> tuple[str, ...]:
        return (self.rate_limit_scope,)

    def check_throttles(self, request):
        super().check_throttles(request)
        check(request, self.rate_limit_scopes(request))

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, RateLimitExceeded):
            response["Retry-After"] = str(exc.retry_after)
        return response

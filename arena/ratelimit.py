"""Rate limits, shared by every process on every host: one mechanism for all of them.

- the arena's next-comparison, vote and similar-board endpoints (`check`, `RateLimitedView`);
- a voter's live prompts per hour (arena.live.battles, through `count`);
- the requests a judge sends to one endpoint (routing.judges.openai_compatible, through
  `Pacer`, which waits for room in the window instead of refusing).

Ballot stuffing is cheap when a vote costs a click, so each request is counted against
every subject it comes from: the voter (an account, or a session in the open arena) and
the client's network address. A fresh anonymous session has no history, so the
per-address limit is what holds a script that drops its cookies.

Counts are fixed windows (``120/minute`` allows 120 in each calendar minute; a burst
across a window edge can reach twice that, which is fine for a ceiling on abuse). They
live outside the web process, so every web process on every host shares one limit:

- in Redis (``INCR``) when ``DUET_REDIS_URL`` is set;
- else in the database (arena.sharedstate.RateCount), one row per subject incremented
  with an atomic upsert: SQLite in the embedded setup, PostgreSQL on several hosts.

A refused request gets 429 with the seconds to wait in the message and in ``Retry-After``.
If the counter store itself fails, the request goes through and the failure is logged:
the limits guard against abuse, and a broken cache must never cost a real vote (nor a
judge's request: the endpoint's own 429 is then retried with backoff by the transport).

Windows are numbered from the Unix epoch on each host's clock, so hosts must keep their
clocks in step (NTP holds them within milliseconds, well inside a judge's 1 s window).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from . import errors

logger = logging.getLogger(__name__)

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# Expired rows are pruned on about one hit in this many, so the table stays at roughly the
# number of subjects seen in the longest period and no request pays for a full sweep.
PRUNE_ONE_IN = 2000


@dataclass(frozen=True)
class Rate:
    limit: int
    period: float  # seconds
    unit: str  # "minute", for messages

    @staticmethod
    def per_second(rate: float, burst: float | None = None) -> Rate:
        """``rate`` requests a second on average in windows of ``burst`` requests (default:
        the rate, at least 1): ``per_second(2)`` is 2 per 1 s, ``per_second(0.5)`` 1 per 2 s,
        ``per_second(4, burst=2)`` 2 per 0.5 s."""
        if not rate > 0:
            raise ValueError(f"a rate in requests a second must be positive, got {rate}")
        limit = int(burst if burst is not None else max(1.0, rate))
        if limit < 1:
            raise ValueError(f"a burst must be at least 1 request, got {burst}")
        period = limit / rate
        return Rate(limit, period, "second" if period == 1 else f"{period:g} seconds")

    def window(self, now: float) -> tuple[int, float]:
        """The number of the window ``now`` falls in, and the time it ends."""
        window = int(now // self.period)
        return window, (window + 1) * self.period

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


class WaitTooLong(RateLimitExceeded):
    """A `Pacer` would have to wait longer than it may for room in its window."""


# --- counter stores -------------------------------------------------------------------------


class DatabaseStore:
    """Counters as rows of arena.sharedstate.RateCount in the default database: one
    upsert per request for all its subjects. Not worth a transaction of their own: a
    counter is one statement."""

    def hit(self, key: str, window: int, expires: float) -> int:
        """Count one request in ``window`` for ``key``; returns the count so far in it."""
        return self.hit_many([(key, window, expires)])[0]

    def hit_many(self, hits: list[tuple[str, int, float]]) -> list[int]:
        """Count one request for each (key, window, expires) in one statement; returns the
        counts in the same order."""
        from .sharedstate import RateCount

        connection = connections[DEFAULT_DB_ALIAS]
        table = connection.ops.quote_name(RateCount._meta.db_table)
        rows = ", ".join(["(%s, %s, 1, %s)"] * len(hits))
        # Sorted by key: two requests counting the same subjects lock their rows in one order.
        hits_in_order = sorted(hits)
        key, window, n, expires = (connection.ops.quote_name(column) for column in ("key", "window", "n", "expires"))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({key}, {window}, {n}, {expires}) VALUES {rows} "
                f"ON CONFLICT ({key}) DO UPDATE SET "
                f"{n} = CASE WHEN {table}.{window} = excluded.{window} THEN {table}.{n} + 1 ELSE 1 END, "
                f"{window} = excluded.{window}, {expires} = excluded.{expires} RETURNING {key}, {n}",
                [value for hit in hits_in_order for value in hit],
            )
            counts = dict(cursor.fetchall())
            if random.random() < 1 / PRUNE_ONE_IN:
                cursor.execute(f"DELETE FROM {table} WHERE {expires} < %s", [time.time()])
        return [counts[subject] for subject, _, _ in hits]


class RedisStore:
    """Counters in Redis: one script call per request for all its subjects (a MULTI
    pipeline of INCR and EXPIREAT per subject was six commands to pack and parse)."""

    # Each key's expiry is set by the hit that creates it: a window's key lives until
    # the window ends, plus a second.
    SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIREAT', key, ARGV[i]) end
  counts[i] = n
end
return counts
"""

    def __init__(self, client):
        self.client = client

    def hit(self, key: str, window: int, expires: float) -> int:
        return self.hit_many([(key, window, expires)])[0]

    def hit_many(self, hits: list[tuple[str, int, float]]) -> list[int]:
        keys = [f"duet:ratelimit:{key}:{window}" for key, window, _ in hits]
        expiries = [math.ceil(expires) + 1 for _, _, expires in hits]
        return [int(count) for count in _script(self.client)(keys=keys, args=expiries)]


@lru_cache(maxsize=8)
def _script(client):
    # redis-py sends EVALSHA and loads the script on the first NOSCRIPT answer.
    return client.register_script(RedisStore.SCRIPT)


def store() -> DatabaseStore | RedisStore:
    """Redis when ``DUET_REDIS_URL`` is set, else the database."""
    from .sharedstate import redis_client

    client = redis_client()
    return DatabaseStore() if client is None else RedisStore(client)


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


def digest(value: str) -> str:
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
        voter_rate = Rate.parse({"vote": settings.VOTE_RATE_LIMIT, "next": settings.NEXT_RATE_LIMIT,
                                 "similar": settings.SIMILAR_RATE_LIMIT}[scope])  # fmt: skip
        if voter_rate is None:
            continue
        if user is not None and user.is_authenticated:
            subjects.append((f"{scope}:user:{user.pk}", "this account", voter_rate, NOUNS[scope]))
        else:
            session_key = request.session.session_key if hasattr(request, "session") else None
            if session_key:
                subjects.append((f"{scope}:session:{digest(session_key)}", "this browser session", voter_rate,
                                 NOUNS[scope]))  # fmt: skip
    client_rate = Rate.parse(settings.CLIENT_RATE_LIMIT)
    if client_rate is not None:
        # One budget for next and vote together: a client's whole arena traffic.
        subjects.append((f"client:{digest(client_address(request))}", "your network address", client_rate,
                         "requests to the arena"))  # fmt: skip
    return subjects


NOUNS = {"vote": "votes", "next": "requests for a comparison", "similar": "boards for prompts like one"}


# --- counting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """One request counted against one subject's rate."""

    n: int  # requests in this window so far, this one included
    rate: Rate
    wait: float  # seconds until this window ends

    @property
    def allowed(self) -> bool:
        return self.n <= self.rate.limit

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait, as ``Retry-After`` and messages put it."""
        return max(1, math.ceil(self.wait))


def count_many(subjects: list[tuple[str, Rate]], now: float | None = None) -> list[Count] | None:
    """Count one request against each (key, rate) in one call to the store; None when the
    store failed (logged): callers let the request through."""
    now = time.time() if now is None else now
    hits = []
    for key, rate in subjects:
        window, window_ends = rate.window(now)
        # The period is in the key: one subject limited over a minute and an hour counts twice.
        hits.append((f"{key}:{rate.period:g}", window, window_ends))
    try:
        counts = store().hit_many(hits)
    except Exception:  # noqa: BLE001 - database, redis or OS errors alike: fail open
        logger.exception("rate-limit store failed; letting the request through")
        return None
    return [Count(n, rate, ends - now) for (_, rate), (_, _, ends), n in zip(subjects, hits, counts, strict=True)]


def count(key: str, rate: Rate, now: float | None = None) -> Count | None:
    """Count one request for ``key`` in ``rate``'s current window (see `count_many`)."""
    counted = count_many([(key, rate)], now)
    return None if counted is None else counted[0]


def check(request, scopes: str | tuple[str, ...]) -> None:
    """Count this request against each scope's limits ("vote", "next": a vote that asks
    for the next comparison counts against both); raise RateLimitExceeded (429) when any
    of them is spent."""
    subjects = _subjects(request, (scopes,) if isinstance(scopes, str) else tuple(scopes))
    if not subjects:
        return
    counts = count_many([(key, rate) for key, _, rate, _ in subjects])
    if counts is None:
        return
    refusal: RateLimitExceeded | None = None
    for (_, label, rate, noun), counted in zip(subjects, counts, strict=True):
        if not counted.allowed and (refusal is None or counted.retry_after > refusal.retry_after):
            refusal = RateLimitExceeded(
                f"Too many {noun} from {label}: the limit is {rate.limit} per {rate.unit}. "
                f"Try again in {counted.retry_after} s.",
                counted.retry_after,
            )
    if refusal is not None:
        raise refusal


class Pacer:
    """Paces calls to a shared budget: `acquire` counts a call and, when the window is
    spent, sleeps until the next window and counts again, so every process on every host
    that paces the same ``key`` shares one budget and each waits its turn rather than fail.

    Each retry counts against the next window, so when several callers wait for one
    window the first ``limit`` to arrive go and the rest wait again; ``max_wait_s`` bounds
    the total, after which `acquire` raises WaitTooLong naming ``name`` and the rate.
    """

    # A floor on each sleep: a window's end computed in floating point can fall a hair
    # before the next window starts, and sleeping 0 s there would spin.
    MIN_SLEEP_S = 0.001

    def __init__(self, key: str, rate: Rate, *, name: str, max_wait_s: float,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        self.key, self.rate, self.name, self.max_wait_s = key, rate, name, max_wait_s
        self.clock, self.sleep = clock, sleep

    def acquire(self) -> float:
        """Count one call, waiting for room if need be; returns the seconds waited."""
        waited = 0.0
        while True:
            counted = count(self.key, self.rate, self.clock())
            if counted is None or counted.allowed:
                return waited
            wait = max(counted.wait, self.MIN_SLEEP_S)
            if waited + wait > self.max_wait_s:
                raise WaitTooLong(
                    f"{self.name}: its limit of {self.rate.limit} requests per {self.rate.unit} is spent; "
                    f"waited {waited:.1f} s and would wait longer than {self.max_wait_s:g} s for room "
                    "(other workers are calling it too: raise the limit, or run fewer of them)",
                    counted.retry_after,
                )
            self.sleep(wait)
            waited += wait


class RateLimitedView:
    """DRF view mixin: ``rate_limit_scope = "vote"`` counts every request to the view
    (after authentication, before the handler); a view whose requests count against more
    scopes says so in `rate_limit_scopes`. A refusal is a 429 with ``Retry-After``
    (arena.api.errors.exception_handler, for every RateLimitExceeded)."""

    rate_limit_scope = ""

    def rate_limit_scopes(self, request) -> tuple[str, ...]:
        return (self.rate_limit_scope,)

    def check_throttles(self, request):
        super().check_throttles(request)
        check(request, self.rate_limit_scopes(request))

"""Per-process copies of the rows the vote loop reads on every request and that rarely
change: who a token belongs to, a voter's judge, the matchmaking index, rendered outputs,
the default arena and the board matchmaking weighs pairs by.

The vote loop is "next comparison, vote", thousands of times a minute; without these each
request re-read the same rows (bench/load.py measured ~37 ms of CPU per vote, most of it
re-reading every output of the arena to pick one pair). Each process keeps its own copy,
told of changes two ways:

- Change stamps, for every process on every host. A counter per watched model, in Redis
  when ``DUET_REDIS_URL`` is set, else in the database (arena.sharedstate.ChangeStamp); a
  save, delete or many-to-many change of a model in `WATCHED`, in any Django process (web
  worker, Celery worker, ``manage.py shell``, on any host), bumps its counter once the
  transaction commits. A busy process reads the counters at most every
  ``DUET_ARENA_CACHE_CHECK_SECONDS`` (0.25 s), and a memo whose counters moved forgets its
  copies: a token revoked on one host is refused by every host within that, plus a
  request. The bump waits for the commit because a bump before it would let another
  process reload the old row and keep it. The process that made the change also clears
  its own copies at once, before the commit. A stamp clears a whole memo, not the changed
  row's entry: each new output (a live battle's answer too) has every process rebuild its
  matchmaking index once. Between reads a memo compares counters already in memory
  (about 0.2 µs per `Memo.get`); the read itself is one query (or one Redis call) per
  process every 0.25 s at most, never on a request's own connection budget.
- The lifetime ``DUET_ARENA_CACHE_SECONDS`` (60 s), for what no stamp reports: raw SQL, a
  ``.update()`` or ``bulk_create()`` without a `changed()` call beside it, or stamps that
  cannot be read (Redis away: each process then warns and relies on the lifetime alone
  until it can read them again). ``0`` turns caching off.

Votes themselves are never cached: every judgment is written to the database before the
response, and the checks that keep them single (the unique constraint) are the database's.
"""

from __future__ import annotations

import logging
import operator
import os
import threading
import time
from collections.abc import Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

from django.apps import apps
from django.conf import settings
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import signals

T = TypeVar("T")

logger = logging.getLogger(__name__)

_MISSING = object()

# Every model ("app.Model") and many-to-many field ("app.Model.field") a memo may be
# invalidated by. Listed here rather than gathered from the memos: every process must bump
# their stamps, also one that never imports the module defining the memo (a Celery worker
# or `manage.py shell` deleting a token need not import arena.api.authentication).
WATCHED = (
    "arena.Arena", "arena.Judge", "arena.LeaderboardSnapshot", "arena.Output", "arena.Prompt", "arena.System",
    "arena.Webhook",
    "authtoken.Token", "auth.User", "auth.Group", "auth.User.groups", "auth.User.user_permissions",
    "auth.Group.permissions",
)  # fmt: skip
# "app.Model:edited": only saves of existing rows and deletes, not new rows. For memos
# keyed by the row (an output's HTML, a token's owner), which a new row cannot make
# wrong: a live battle's new outputs must not make every process re-render every output.
EDITED = ":edited"
_WATCHED = frozenset(WATCHED) | {label + EDITED for label in WATCHED if label.count(".") == 1}


class Memo(Generic[T]):
    """A bounded map key -> value that forgets entries after ``ttl`` seconds (default:
    the setting), and all of them when a model it is invalidated by changes. Thread-safe:
    a miss may be computed twice by racing threads, never stored half-made."""

    def __init__(
        self, name: str, *, invalidated_by: tuple[str, ...] = (), ttl: float | None = None, maxsize: int = 20_000
    ):
        """`invalidated_by`: models ("app.Model") whose saves and deletes clear the memo,
        ("app.Model:edited") whose saves of existing rows and deletes do, and many-to-many
        fields ("app.Model.field") whose changes do; each must be in `WATCHED`. `ttl`: for values that do not change once made (an output's HTML), a
        lifetime longer than the setting's; the setting at 0 still turns it off."""
        unknown = set(invalidated_by) - _WATCHED
        if unknown:
            raise ValueError(f"memo {name!r}: add {sorted(unknown)} to arena.hotcache.WATCHED")
        self.name = name
        self.invalidated_by = invalidated_by
        self.ttl = ttl
        self.maxsize = maxsize
        self._data: dict[Hashable, tuple[float, T]] = {}
        self._lock = threading.Lock()
        labels = sorted(set(invalidated_by))
        # One C call reads every counter the memo watches, as an int or a tuple of ints.
        self._read_stamps = operator.itemgetter(*labels) if labels else None
        # The counters read before the copies in _data were computed: a change committed
        # while one was computed shows as different counters on the next read.
        self._seen = None
        _memos.append(self)

    def lifetime(self) -> float:
        seconds = _cache_seconds if _cache_seconds is not None else _read_cache_seconds()
        if seconds <= 0:
            return 0.0
        return seconds if self.ttl is None else self.ttl

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        ttl = self.lifetime()
        if ttl <= 0:
            return compute()
        now = time.monotonic()
        counters = _counters if now < _next_check else _check(now)
        stamps = None if counters is None or self._read_stamps is None else self._read_stamps(counters)
        if stamps != self._seen:
            with self._lock:
                self._data.clear()
                self._seen = stamps
        entry = self._data.get(key, _MISSING)
        if entry is not _MISSING and now < entry[0]:
            return entry[1]
        value = compute()
        with self._lock:
            # Another thread has seen a change since this value's counters: it may predate it.
            if self._seen != stamps:
                return value
            if len(self._data) >= self.maxsize:
                # Simpler than LRU and as good here: the hot set is refilled within a
                # few requests, and a full sweep happens once per maxsize misses.
                self._data.clear()
            self._data[key] = (now + ttl, value)
        return value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_memos: list[Memo] = []

# settings.ARENA_CACHE_SECONDS, read once (a settings lookup costs more than the rest of
# a hit) and again when a test overrides it.
_cache_seconds: float | None = None


def _read_cache_seconds() -> float:
    global _cache_seconds
    _cache_seconds = settings.ARENA_CACHE_SECONDS
    return _cache_seconds


def clear_all() -> None:
    """Forget everything in this process (tests call it between tests: a rolled-back
    transaction sends no signals)."""
    for memo in _memos:
        memo.clear()


# --- telling processes about changes ---------------------------------------------------------


def changed(*labels: str, using: str | None = None) -> None:
    """Models in `WATCHED` changed in the current transaction of database `using`: clear
    this process's memos of them now, bump their stamps for every process once it commits
    (at once outside a transaction; never if it rolls back). Model signals call this; call
    it beside a ``bulk_create()`` ("app.Model") or an ``.update()`` ("app.Model" and
    "app.Model:edited") whose rows a memo may hold."""
    unknown = set(labels) - _WATCHED
    if unknown:
        raise ValueError(f"not watched by arena.hotcache: {sorted(unknown)}")
    for memo in _memos:
        if not set(memo.invalidated_by).isdisjoint(labels):
            memo.clear()
    transaction.on_commit(partial(bump, *labels), using=using)


def _on_save_or_delete(label: str, sender, using: str, created: bool = False, **kwargs) -> None:
    if created:
        changed(label, using=using)
    else:  # an existing row saved, or deleted
        changed(label, label + EDITED, using=using)


def _on_m2m_change(label: str, sender, action: str, using: str, **kwargs) -> None:
    if action.startswith("post_"):
        changed(label, using=using)


def connect_signals() -> None:
    """Called once the apps are loaded (arena.apps), in every Django process."""
    for label in WATCHED:
        app_label, model_name, *field = label.split(".")
        model = apps.get_model(app_label, model_name)
        uid = f"duet.hotcache.{label}"
        if field:
            signals.m2m_changed.connect(partial(_on_m2m_change, label), sender=getattr(model, field[0]).through,
                                        weak=False, dispatch_uid=uid)  # fmt: skip
        else:
            receiver = partial(_on_save_or_delete, label)
            signals.post_save.connect(receiver, sender=model, weak=False, dispatch_uid=uid + ".save")
            signals.post_delete.connect(receiver, sender=model, weak=False, dispatch_uid=uid + ".delete")


# --- where the stamps live ----------------------------------------------------------------


class DatabaseStamps:
    """The counters as rows of arena.sharedstate.ChangeStamp, in the default database."""

    def read(self) -> dict[str, int]:
        # On the raw connection: the read is the cache's, not the request's (it would
        # otherwise show at random in a request's queries, and in its query count).
        connection = connections[DEFAULT_DB_ALIAS]
        connection.ensure_connection()
        cursor = connection.connection.cursor()
        try:
            cursor.execute(f"SELECT label, n FROM {_stamps_table()}")
            return dict(cursor.fetchall())
        finally:
            cursor.close()

    def bump(self, labels: list[str]) -> None:
        connection = connections[DEFAULT_DB_ALIAS]
        rows = ", ".join(["(%s, 1)"] * len(labels))
        table = _stamps_table()
        with connection.cursor() as cursor:
            # Sorted: two processes bumping the same labels lock their rows in one order.
            cursor.execute(
                f"INSERT INTO {table} (label, n) VALUES {rows} ON CONFLICT (label) DO UPDATE SET n = {table}.n + 1",
                labels,
            )


class RedisStamps:
    """The counters as one Redis hash."""

    KEY = "duet:hotcache:stamps"

    def __init__(self, client):
        self.client = client

    def read(self) -> dict[str, int]:
        return {label.decode(): int(n) for label, n in self.client.hgetall(self.KEY).items()}

    def bump(self, labels: list[str]) -> None:
        pipeline = self.client.pipeline(transaction=False)
        for label in labels:
            pipeline.hincrby(self.KEY, label, 1)
        pipeline.execute()


def _stamps_table() -> str:
    from .sharedstate import ChangeStamp

    return connections[DEFAULT_DB_ALIAS].ops.quote_name(ChangeStamp._meta.db_table)


def stamps_store() -> DatabaseStamps | RedisStamps:
    from .sharedstate import redis_client

    client = redis_client()
    return DatabaseStamps() if client is None else RedisStamps(client)


# After a failed read, the next try waits this long: with Redis away, a read on every
# request would cost each of them the connection timeout.
RETRY_AFTER_FAILURE_SECONDS = 5.0

# This process's copy of the counters (every watched label, 0 when never bumped), when it
# was last read, and whether the last read failed.
_counters: dict[str, int] | None = None
_next_check = 0.0
_failing = False
_check_lock = threading.Lock()


def _check(now: float) -> dict[str, int] | None:
    """Read the counters again (at most one thread at a time; the others keep the copy)."""
    global _counters, _next_check, _failing
    if not _check_lock.acquire(blocking=False):
        return _counters
    try:
        if now < _next_check:
            return _counters
        try:
            counters = dict.fromkeys(_WATCHED, 0)
            counters.update(stamps_store().read())
        except Exception as error:  # noqa: BLE001 - a database or Redis error alike: fall back on the lifetime
            if not _failing:
                logger.warning(
                    "hotcache: cannot read the change stamps (%s); changes made by other processes will show "
                    "within DUET_ARENA_CACHE_SECONDS (%s s) only", error, settings.ARENA_CACHE_SECONDS,
                )  # fmt: skip
            _failing = True
            _counters = None
            _next_check = now + RETRY_AFTER_FAILURE_SECONDS
            return None
        _failing = False
        _counters = counters
        _next_check = now + settings.ARENA_CACHE_CHECK_SECONDS
        return counters
    finally:
        _check_lock.release()


def seen_stamp(label: str) -> int | None:
    """This process's copy of one change counter (read again at most every
    DUET_ARENA_CACHE_CHECK_SECONDS), or None while the counters cannot be read."""
    if label not in _WATCHED:
        raise ValueError(f"not watched by arena.hotcache: {label}")
    now = time.monotonic()
    counters = _counters if now < _next_check else _check(now)
    return None if counters is None else counters[label]


def bump(*labels: str) -> None:
    """Add one to the stamps of these labels, for every process on every host."""
    try:
        stamps_store().bump(sorted(set(labels)))
    except Exception:  # noqa: BLE001 - runs after a commit: the change stands, others see it by the lifetime
        logger.warning("hotcache: could not bump the change stamps of %s", labels, exc_info=True)


def stamp(label: str) -> int | None:
    """The label's counter as every process sees it now (read afresh); None when the
    stamps cannot be read."""
    try:
        return stamps_store().read().get(label, 0)
    except Exception:  # noqa: BLE001 - as in _check
        return None


def forget_stamps() -> None:
    """Drop this process's copy of the counters: the next memo read reads them again
    (between tests, when the setting changes)."""
    global _counters, _next_check, _failing
    _counters, _next_check, _failing = None, 0.0, False


def _forget_after_fork() -> None:
    global _check_lock
    _check_lock = threading.Lock()  # a thread of the parent may have held it
    forget_stamps()


def _on_setting_changed(setting: str, **kwargs) -> None:
    global _cache_seconds
    if setting in ("REDIS_URL", "ARENA_CACHE_CHECK_SECONDS", "DATABASES"):
        forget_stamps()
    elif setting == "ARENA_CACHE_SECONDS":
        _cache_seconds = None


os.register_at_fork(after_in_child=_forget_after_fork)
setting_changed.connect(_on_setting_changed, dispatch_uid="duet.hotcache.setting_changed")

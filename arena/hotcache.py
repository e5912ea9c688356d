"""Per-process copies of the rows the vote loop reads on every request and that rarely
change: who a token belongs to, a voter's judge, the matchmaking index, rendered outputs,
the default arena and the board matchmaking weighs pairs by.

The vote loop is "next comparison, vote", thousands of times a minute; without these each
request re-read the same rows (bench/load.py measured ~37 ms of CPU per vote, most of it
re-reading every output of the arena to pick one pair). Each process keeps its own copy,
told of changes two ways:

- Change stamps, for every process on one host. A small shared file
  (``DUET_ARENA_CACHE_STAMPS``, memory-mapped) holds a counter per watched model; a save,
  delete or many-to-many change of a model in `WATCHED`, in any Django process (web
  worker, Celery worker, ``manage.py shell``), bumps its counter once the transaction
  commits, and every memo compares the counters of its models before each read: a
  revoked token is refused by every web worker on the next request. The bump waits for the
  commit because a bump before it would let another process reload the old row and keep it.
  The process that made the change also clears its own copies at once, before the commit.
  A stamp clears a whole memo, not the changed row's entry: each new output (a live
  battle's answer too) has every process rebuild its matchmaking index once. Reading the
  counters costs about 0.2 µs per `Memo.get` for the token memo (six models; timeit).
- The lifetime ``DUET_ARENA_CACHE_SECONDS`` (60 s), for what no stamp reports: raw SQL, a
  ``.update()`` or ``bulk_create()`` without a `changed()` call beside it, web processes
  on another host (or with the stamps file unwritable: each process then warns once and
  relies on the lifetime alone). ``0`` turns caching off.

Votes themselves are never cached: every judgment is written to the database before the
response, and the checks that keep them single (the unique constraint) are the database's.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import operator
import os
import threading
import time
import zlib
from collections.abc import Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

from django.apps import apps
from django.conf import settings
from django.core.signals import setting_changed
from django.db import transaction
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
        slots = sorted({_slot(label) for label in invalidated_by})
        # One C call reads every counter the memo watches, as an int or a tuple of ints.
        self._read_stamps = operator.itemgetter(*slots) if slots else None
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
        counters = _counters if _opened else _open()
        stamps = None if counters is None or self._read_stamps is None else self._read_stamps(counters)
        if stamps != self._seen:
            with self._lock:
                self._data.clear()
                self._seen = stamps
        now = time.monotonic()
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


# --- the stamps file ---------------------------------------------------------------------------

# 512 counters of 8 bytes: one 4 KiB page. Two labels sharing a slot only clear each
# other's memos. Native byte order: the file is only ever shared on one host.
SLOTS = 512
_SIZE = SLOTS * 8

# This process's mapping of the file: None with _opened set when it cannot be used.
_counters: memoryview | None = None
_opened = False
_fd: int | None = None
_pid: int | None = None
_open_lock = threading.Lock()


def _slot(label: str) -> int:
    return zlib.crc32(label.encode()) % SLOTS


def _open() -> memoryview | None:
    """Map the stamps file, creating it; once per process (and again after a fork)."""
    global _counters, _opened, _fd, _pid
    with _open_lock:
        if _opened:
            return _counters
        path = settings.ARENA_CACHE_STAMPS
        if path:
            fd = None
            try:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
                if os.fstat(fd).st_size < _SIZE:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    try:
                        if os.fstat(fd).st_size < _SIZE:  # another process may have grown it
                            os.ftruncate(fd, _SIZE)
                    finally:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                _counters = memoryview(mmap.mmap(fd, _SIZE)).cast("Q")
                _fd, _pid = fd, os.getpid()
            except (OSError, ValueError) as exc:
                if fd is not None:
                    os.close(fd)
                logger.warning(
                    "hotcache: cannot use the change stamps file %s (%s); other processes' changes will "
                    "show within DUET_ARENA_CACHE_SECONDS (%s s) only", path, exc, settings.ARENA_CACHE_SECONDS,
                )  # fmt: skip
        _opened = True
        return _counters


def bump(*labels: str) -> None:
    """Add one to the stamps of these labels, for every process sharing the file."""
    counters = _counters if _opened and _pid == os.getpid() else _reopen()
    fd = _fd
    if counters is None or fd is None:
        return
    # The read-add-write must not interleave with another process's: an exclusive lock on
    # this process's own open of the file (a descriptor inherited over fork would share
    # its lock with the parent, hence the reopen after a fork).
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            for slot in {_slot(label) for label in labels}:
                counters[slot] += 1
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:  # runs after a commit: the change stands, other processes see it by the lifetime
        logger.warning("hotcache: could not bump the change stamps of %s", labels, exc_info=True)


def stamp(label: str) -> int | None:
    """The label's counter as every process on this host sees it; None without a usable
    stamps file."""
    counters = _counters if _opened else _open()
    return None if counters is None else counters[_slot(label)]


def _reopen() -> memoryview | None:
    if _pid is not None and _pid != os.getpid():
        forget_stamps()
    return _counters if _opened else _open()


def forget_stamps() -> None:
    """Drop this process's mapping of the stamps file: the next read maps it again, from
    the current setting (after a fork, when the setting changes, between tests)."""
    global _counters, _opened, _fd, _pid
    with _open_lock:
        if _fd is not None:
            os.close(_fd)
        _counters, _opened, _fd, _pid = None, False, None, None


def _forget_after_fork() -> None:
    global _open_lock
    _open_lock = threading.Lock()  # a thread of the parent may have held it
    forget_stamps()


def _on_setting_changed(setting: str, **kwargs) -> None:
    global _cache_seconds
    if setting == "ARENA_CACHE_STAMPS":
        forget_stamps()
    elif setting == "ARENA_CACHE_SECONDS":
        _cache_seconds = None


os.register_at_fork(after_in_child=_forget_after_fork)
setting_changed.connect(_on_setting_changed, dispatch_uid="duet.hotcache.setting_changed")

"""Per-process copies of the rows the vote loop reads on every request and that rarely
change: who a token belongs to, a voter's judge, the matchmaking index, rendered outputs,
the default arena and the board matchmaking weighs pairs by.

The vote loop is "next comparison, vote", thousands of times a minute; without these each
request re-read the same rows (bench/load.py measured ~37 ms of CPU per vote, most of it
re-reading every output of the arena to pick one pair). Each web process keeps its own
copy: a change made in this process clears the affected entries at once (model signals,
wired in `arena.apps`), a change made elsewhere (another web worker, the Celery worker, a
`.update()` that sends no signal) is seen at most ``DUET_ARENA_CACHE_SECONDS`` later.
``0`` turns caching off. What it means for users, at the default 5 s: a revoked token or
role still works for up to 5 s in the web processes that had it, a deactivated system
can still be matched for up to 5 s (and a comparison already served with it served again:
that check reads this process's matchmaking index too), new outputs join matchmaking
within 5 s.

Votes themselves are never cached: every judgment is written to the database before the
response, and the checks that keep them single (the unique constraint) are the database's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.apps import apps
from django.conf import settings
from django.db.models import signals

T = TypeVar("T")

_MISSING = object()


class Memo(Generic[T]):
    """A bounded map key -> value that forgets entries after ``ttl`` seconds (default:
    the setting). Thread-safe: a miss may be computed twice by racing threads, never
    stored half-made."""

    def __init__(
        self, name: str, *, invalidated_by: tuple[str, ...] = (), ttl: float | None = None, maxsize: int = 20_000
    ):
        """`invalidated_by`: models ("app.Model") whose saves and deletes in this process
        clear the memo, and many-to-many fields ("app.Model.field") whose changes do.
        `ttl`: for values that do not change once made (an output's HTML), a lifetime
        longer than the setting's; the setting at 0 still turns it off."""
        self.name = name
        self.invalidated_by = invalidated_by
        self.ttl = ttl
        self.maxsize = maxsize
        self._data: dict[Hashable, tuple[float, T]] = {}
        self._lock = threading.Lock()
        _memos.append(self)
        if apps.ready:
            self.connect()

    def connect(self) -> None:
        for label in self.invalidated_by:
            app_label, model_name, *field = label.split(".")
            model = apps.get_model(app_label, model_name)
            uid = f"duet.hotcache.{self.name}.{label}"
            if field:
                signals.m2m_changed.connect(self.clear, sender=getattr(model, field[0]).through, weak=False,
                                            dispatch_uid=uid)  # fmt: skip
            else:
                signals.post_save.connect(self.clear, sender=model, weak=False, dispatch_uid=uid + ".save")
                signals.post_delete.connect(self.clear, sender=model, weak=False, dispatch_uid=uid + ".delete")

    def lifetime(self) -> float:
        if settings.ARENA_CACHE_SECONDS <= 0:
            return 0.0
        return settings.ARENA_CACHE_SECONDS if self.ttl is None else self.ttl

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        ttl = self.lifetime()
        if ttl <= 0:
            return compute()
        now = time.monotonic()
        entry = self._data.get(key, _MISSING)
        if entry is not _MISSING and now < entry[0]:
            return entry[1]
        value = compute()
        with self._lock:
            if len(self._data) >= self.maxsize:
                # Simpler than LRU and as good here: the hot set is refilled within a
                # few requests, and a full sweep happens once per maxsize misses.
                self._data.clear()
            self._data[key] = (now + ttl, value)
        return value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self, *args, **kwargs) -> None:  # also a signal receiver
        with self._lock:
            self._data.clear()


_memos: list[Memo] = []


def connect_signals() -> None:
    """Called once the apps are loaded (arena.apps): memos made before then connect now."""
    for memo in _memos:
        memo.connect()


def clear_all() -> None:
    """Forget everything in this process (tests call it between tests: a rolled-back
    transaction sends no signals)."""
    for memo in _memos:
        memo.clear()

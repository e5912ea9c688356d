"""Which Celery workers are alive, and which queues they consume (every queue, every host).

Each worker writes a small presence record every PRESENCE_INTERVAL_S seconds from the
moment it is ready until it shuts down: its hostname, pid and queues. `workers_for(queue)`
reads the records seen in the last PRESENCE_TTL_S seconds, so `train --wait` (and the
dashboard) can say within seconds that nothing consumes the `training` queue instead of
waiting for a run that never starts.

Celery's own answer, `app.control.inspect().active_queues()`, is a broadcast: it works on
the filesystem broker too, but it waits out its whole reply timeout on every question
(3.3 s for a 3 s timeout, measured on the shared 2-core box), too slow for a page polled
every 2 s, and a `--pool solo` worker answers no control message while a task runs, so a
worker busy training would look absent. Celery's `heartbeat_sent` signal only fires when
worker events are on (`--without-heartbeat` turns them off). So the presence records are
kept here, with the rest of the state every host shares (arena.sharedstate): in Redis when
``DUET_REDIS_URL`` is set (every host sees them, and they expire on their own), otherwise
as files under DUET_VAR_DIR/workers, which the one-machine setup shares between the
worker and the web process.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PRESENCE_INTERVAL_S = 5.0
# Three missed beats: a worker killed with SIGKILL (no shutdown signal) drops out after this.
PRESENCE_TTL_S = 20.0
REDIS_PREFIX = "duet:worker:"


@dataclass(frozen=True)
class WorkerPresence:
    hostname: str
    pid: int
    queues: tuple[str, ...]
    seen_at: float  # Unix time of the last beat

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkerPresence:
        data = json.loads(text)
        return cls(hostname=str(data["hostname"]), pid=int(data["pid"]), queues=tuple(data["queues"]),
                   seen_at=float(data["seen_at"]))  # fmt: skip


# --- where the records live -------------------------------------------------------------------


class PresenceStore:
    """Contract: `write` replaces a worker's record, `remove` deletes it, `all` returns
    every record still stored (fresh or not: `workers_for` decides). A store that cannot be
    reached raises one of its `errors`."""

    errors: tuple[type[Exception], ...] = (OSError,)

    def write(self, presence: WorkerPresence) -> None:
        raise NotImplementedError

    def remove(self, hostname: str) -> None:
        raise NotImplementedError

    def all(self) -> list[WorkerPresence]:
        raise NotImplementedError


class FilePresenceStore(PresenceStore):
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _path(self, hostname: str) -> Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9@._-]", "_", hostname) + ".json")

    def write(self, presence: WorkerPresence) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(presence.hostname)
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        staging.write_text(presence.to_json())
        staging.replace(path)  # a reader never sees half a record

    def remove(self, hostname: str) -> None:
        self._path(hostname).unlink(missing_ok=True)

    def all(self) -> list[WorkerPresence]:
        found = []
        for path in self.folder.glob("*.json") if self.folder.is_dir() else ():
            try:
                found.append(WorkerPresence.from_json(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # removed while listing, or not a record of ours
        return found


class RedisPresenceStore(PresenceStore):
    def __init__(self, client):
        import redis

        self.client = client
        self.errors = (redis.RedisError, OSError)

    def write(self, presence: WorkerPresence) -> None:
        self.client.set(REDIS_PREFIX + presence.hostname, presence.to_json(), ex=int(PRESENCE_TTL_S))

    def remove(self, hostname: str) -> None:
        self.client.delete(REDIS_PREFIX + hostname)

    def all(self) -> list[WorkerPresence]:
        keys = list(self.client.scan_iter(match=REDIS_PREFIX + "*", count=100))
        return [WorkerPresence.from_json(value) for value in self.client.mget(keys) if value] if keys else []


def presence_store() -> PresenceStore:
    """Redis when ``DUET_REDIS_URL`` is set, else files under DUET_VAR_DIR."""
    from django.conf import settings

    from arena.sharedstate import redis_client

    client = redis_client()
    if client is not None:
        return RedisPresenceStore(client)
    return FilePresenceStore(Path(settings.VAR_DIR) / "workers")


def workers_for(queue: str, now: float | None = None) -> list[WorkerPresence]:
    """The workers that consume `queue` and beat within the last PRESENCE_TTL_S seconds."""
    now = time.time() if now is None else now
    return [w for w in presence_store().all() if queue in w.queues and now - w.seen_at <= PRESENCE_TTL_S]


def queue_has_worker(queue: str) -> bool | None:
    """True or False, or None when the presence records cannot be read (Redis down)."""
    store = presence_store()
    try:
        return any(queue in w.queues and time.time() - w.seen_at <= PRESENCE_TTL_S for w in store.all())
    except store.errors:
        logger.warning("could not read the workers' presence", exc_info=True)
        return None


def wait_for_worker(queue: str, timeout: float, poll_s: float = 0.5) -> list[WorkerPresence]:
    """Workers on `queue`, waiting up to `timeout` seconds for one that is still starting."""
    deadline = time.monotonic() + timeout
    while True:
        found = workers_for(queue)
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(min(poll_s, max(deadline - time.monotonic(), 0)))


def no_worker_message(queue: str) -> str:
    return (
        f"no worker is consuming the `{queue}` queue (none has reported in the last {PRESENCE_TTL_S:.0f} s). "
        f"Start one with `make worker` (or `celery -A config worker -Q {queue}`), "
        "or run the job in this command with `train ... --here`."
    )


# --- the worker's side: Celery signal hooks -----------------------------------------------------


class _Beat:
    """A daemon thread that rewrites the worker's record. A thread rather than the worker's
    timer: with `--pool solo` the timer waits while a task runs, and a training task runs
    for hours."""

    def __init__(self, consumer, store: PresenceStore):
        self.consumer = consumer
        self.store = store
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="duet-worker-presence", daemon=True)

    def presence(self) -> WorkerPresence:
        task_consumer = getattr(self.consumer, "task_consumer", None)
        if task_consumer is not None:
            queues = [queue.name for queue in task_consumer.queues]
        else:
            queues = list(self.consumer.app.amqp.queues.consume_from)
        return WorkerPresence(hostname=self.consumer.hostname, pid=os.getpid(), queues=tuple(sorted(queues)),
                              seen_at=time.time())  # fmt: skip

    def beat(self) -> None:
        try:
            self.store.write(self.presence())
        except self.store.errors:  # a missed beat must never take the worker down
            logger.warning("could not record this worker's presence", exc_info=True)

    def _run(self) -> None:
        while not self.stopped.wait(PRESENCE_INTERVAL_S):
            self.beat()

    def start(self) -> None:
        self.beat()
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        try:
            self.store.remove(self.consumer.hostname)
        except self.store.errors:  # the record then goes stale on its own
            logger.warning("could not remove this worker's presence", exc_info=True)


_beats: dict[str, _Beat] = {}


def on_worker_ready(sender=None, **kwargs) -> None:
    """`worker_ready`: `sender` is the worker's Consumer."""
    beat = _Beat(sender, presence_store())
    _beats[sender.hostname] = beat
    beat.start()


def on_worker_shutdown(sender=None, **kwargs) -> None:
    """`worker_shutdown`: `sender` is the WorkController."""
    beat = _beats.pop(getattr(sender, "hostname", None), None)
    if beat is not None:
        beat.stop()


def connect_signals() -> None:
    from celery.signals import worker_ready, worker_shutdown

    worker_ready.connect(on_worker_ready, weak=False, dispatch_uid="duet.jobs.workers.ready")
    worker_shutdown.connect(on_worker_shutdown, weak=False, dispatch_uid="duet.jobs.workers.shutdown")

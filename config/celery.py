"""The Celery app. Settings come from Django's settings under the CELERY_ namespace.

With no configuration the broker is kombu's filesystem transport under DUET_VAR_DIR, so a
real worker runs beside the web server with no server to install; CELERY_BROKER_URL points
it at Redis in production.

`LANES` are the workers `make run` and `make worker` start, in two lanes. Quick work (the
board refresh in `board`, live-battle answers in `live`) never waits behind long jobs
(outputs in bulk, judging, training and webhook deliveries in `long`; exports and imports
in `files`, a process of their own so a file job never waits behind generation): it has
processes of its own, and the long lane runs at a lower CPU priority (`nice`), so on a
small machine the quick lane gets the cores when it needs them.
"""

import logging
import os
from dataclasses import dataclass

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("duet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["arena.jobs"])  # the job lifecycle's sweep (arena.jobs.tasks)

# The beat runs inside the long lane's worker (`-B`, see LANES): one per installation. The
# sweep fails running jobs whose worker stopped beating; it is idempotent, so a second beat
# on another host does no harm.
app.conf.beat_schedule = {
    "sweep-stale-jobs": {"task": "arena.jobs.tasks.sweep_stale_jobs", "schedule": 60.0},
    # Webhook deliveries never queued (the broker was down) or whose worker died.
    "sweep-webhook-deliveries": {"task": "arena.webhooks.sweep_deliveries", "schedule": 60.0},
    # Import uploads kept for a retry past DUET_ANNOTATION_IMPORT_KEEP_DAYS.
    "sweep-import-uploads": {"task": "annotation.import_tasks.sweep_import_uploads", "schedule": 3600.0},
    # Expired annotation leases marked as such, for the progress pages and the admin (the
    # queue never hands out work by an expired lease, whether or not this has run).
    "reclaim-expired-leases": {"task": "annotation.tasks.reclaim_expired_leases", "schedule": 300.0},
}


@app.on_after_configure.connect
def _make_filesystem_broker_folders(sender, **kwargs):
    """kombu's filesystem transport expects its folders to exist."""
    options = sender.conf.broker_transport_options or {}
    if str(sender.conf.broker_url).startswith("filesystem://"):
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            if options.get(key):
                os.makedirs(options[key], exist_ok=True)


@dataclass(frozen=True)
class Lane:
    """One worker: its queues, its processes, and its CPU priority (a `nice` increment)."""

    name: str
    queues: tuple[str, ...]
    concurrency: int
    nice: int = 0
    beat: bool = False  # also run the beat (periodic tasks) in this worker's main process

    def worker_args(self) -> list[str]:
        """`celery` arguments; the Makefile spells the same ones out (tests/test_lanes.py compares)."""
        return ["-A", "config", "worker", "-n", f"{self.name}@%h", "-Q", ",".join(self.queues),
                "-c", str(self.concurrency)] + (["-B"] if self.beat else [])  # fmt: skip


LANES = (
    # The board: a refresh takes well under a second, but it must never queue behind anything.
    Lane("board", ("default",), concurrency=1),
    # Live battles: both sides of a battle answer at once.
    Lane("live", ("live",), concurrency=2),
    # Long jobs: a training run and a batch of outputs side by side, yielding the CPU to
    # the quick lane (nice 10 weighs about a tenth of nice 0 on Linux's scheduler).
    # It also runs the beat: its main process stays free while its pool works.
    Lane("long", ("generation", "judging", "training", "webhooks"), concurrency=2, nice=10, beat=True),
    # File jobs (exports, imports) in a process of their own: an import posted while the
    # demo generates outputs waited over two minutes behind them in the long lane.
    Lane("files", ("export",), concurrency=1, nice=10),
)


# --- the live lane keeps its models loaded ---------------------------------------------------


@worker_process_init.connect
def _preload_live_models(**kwargs):
    """A process that answers live battles loads their models before it takes a task, so
    the first battle streams at once. Not in a thread beside the first task: transformers'
    lazy imports are not safe to race (a battle failed with an ImportError that way), hence
    CELERY_WORKER_PROC_ALIVE_TIMEOUT in the settings."""
    if "live" not in app.amqp.queues.consume_from:  # the worker's -Q, set before the pool forks
        return
    from django.db import connection

    from arena.live.battles import preload_live_models

    try:
        preload_live_models()
    except Exception:  # noqa: BLE001 - e.g. a database not migrated yet; the battles will say
        logging.getLogger(__name__).exception("could not preload the live models")
    finally:
        connection.close()  # the pool's own work opens its own

"""Real Duet processes for end-to-end tests and benchmarks: Celery workers (one on every
queue, or the lanes `make run` starts) and a web server, started as subprocesses on the
test database (a file, see config/settings_test.py), with the embedded filesystem broker
in a temporary folder."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
# One worker on every queue (what `make run` started before the lanes).
WORKER_QUEUES = ",".join(settings.CELERY_QUICK_QUEUES + settings.CELERY_LONG_QUEUES)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """The test database as DATABASE_URL, for a subprocess to share it: the SQLite file,
    or the PostgreSQL test database where the suite runs on PostgreSQL."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.postgresql":
        credentials = quote(db["USER"] or "", safe="") + (":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else "")
        return f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{quote(db['NAME'], safe='')}"
    return f"sqlite:///{db['NAME']}"


def process_env(tmp_path: Path, **overrides) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": test_database_url(),
        "DUET_VAR_DIR": str(tmp_path / "var"),
        "DUET_MEDIA_ROOT": str(tmp_path / "media"),
        # The change stamps are the test database's: the test's committed changes reach
        # these processes on their next read.
        "DUET_ARENA_CACHE_CHECK_SECONDS": "0",
        "PYTHONUNBUFFERED": "1",
        # One torch thread per worker process: on 2 shared cores, two processes with two
        # threads each slow generation down many times over (measured 20-40x).
        "OMP_NUM_THREADS": "1",
        **overrides,
    }


class Process:
    def __init__(self, args, env, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text()[-tail:]

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self._log.close()


def start_worker(env, tmp_path: Path, concurrency: int = 1) -> Process:
    return Process(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", WORKER_QUEUES, "-c", str(concurrency),
         "--loglevel=INFO", "--without-heartbeat"],
        env, tmp_path / "worker.log",
    )  # fmt: skip


def start_lanes(env, tmp_path: Path, names: tuple[str, ...] | None = None) -> list[Process]:
    """The workers `make run` starts (config.celery.LANES; with `names`, only those lanes),
    each at its CPU priority and logging to `<lane>.log` in tmp_path."""
    from config.celery import LANES

    return [
        Process(["nice", "-n", str(lane.nice), sys.executable, "-m", "celery", *lane.worker_args(),
                 "--loglevel=INFO", "--without-heartbeat"],
                {**env, "OMP_NUM_THREADS": "1"}, tmp_path / f"{lane.name}.log")  # fmt: skip
        for lane in LANES
        if names is None or lane.name in names
    ]


def wait_until_consuming(workers: list[Process], timeout: float = 120) -> None:
    """Block until every worker logs that it is ready (its queues are declared)."""
    deadline = time.monotonic() + timeout
    for worker in workers:
        while "ready." not in worker.log_path.read_text():
            assert worker.alive(), worker.log()
            assert time.monotonic() < deadline, "worker not ready:\n" + worker.log()
            time.sleep(0.2)


def start_web(env, tmp_path: Path) -> tuple[Process, str]:
    port = free_port()
    web = Process(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
        env, tmp_path / "web.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/accounts/login/", timeout=1).read()
            return web, url
        except OSError:
            assert web.alive(), web.log()
            time.sleep(0.2)
    raise AssertionError("web server did not start:\n" + web.log())


def login_ready(user, password: str = "correct-horse-battery") -> None:
    """Re-hash a test user's password with a hasher the production settings know."""
    from django.contrib.auth.hashers import make_password

    user.password = make_password(password, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])

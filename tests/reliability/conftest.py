"""Helpers for the reliability tests: real subprocesses (web server, Celery worker,
redis-server) pointed at the file-based test database."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(autouse=True)
def fresh_rate_limits(settings, tmp_path):
    """Each test counts in the test database (rolled back after it, or emptied by a
    transactional test's flush), so ids reused after a rollback start at zero."""
    settings.VAR_DIR = tmp_path / "var"
    settings.REDIS_URL = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


@pytest.fixture
def subprocess_env(tmp_path):
    """Environment for manage.py, gunicorn and celery subprocesses sharing the test database."""
    db = django_settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("subprocess tests run on the file-based SQLite test database")
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{db['NAME']}",
        "DUET_VAR_DIR": str(tmp_path / "subvar"),
        "DUET_MEDIA_ROOT": str(tmp_path / "media"),
        # The change stamps are the test database's: the test's committed changes reach
        # these processes on their next read.
        "DUET_ARENA_CACHE_CHECK_SECONDS": "0",
        "DUET_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        # These tests push many votes from 127.0.0.1 on purpose; the limits have their own tests.
        "DUET_VOTE_RATE_LIMIT": "off",
        "DUET_NEXT_RATE_LIMIT": "off",
        "DUET_CLIENT_RATE_LIMIT": "off",
    }


class Processes:
    """Subprocesses started by a test, each in its own process group, all stopped at the end."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.started: list[tuple[subprocess.Popen, object]] = []

    def start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}.log", "a")
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append((process, log))
        return process

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.tmp_path / f"{name}.log"
        return path.read_text()[-tail:] if path.exists() else ""

    @staticmethod
    def kill(process: subprocess.Popen, sig=signal.SIGKILL) -> None:
        if process.poll() is None:
            os.killpg(process.pid, sig)
            process.wait(timeout=30)

    def stop_all(self) -> None:
        for process, log in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
            log.close()


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def start_worker(processes: Processes, env: dict, name: str = "worker") -> subprocess.Popen:
    return processes.start(
        name,
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,generation,judging,training",
         "-c", "1", "--loglevel=INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"],
        env,
    )  # fmt: skip


def start_gunicorn(processes: Processes, env: dict, port: int, workers: int = 2, name: str = "web") -> subprocess.Popen:
    process = processes.start(
        name,
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
         "--timeout", "60", "--graceful-timeout", "5"],
        env,
    )  # fmt: skip
    wait_for_port(port, 60, process)
    return process


@pytest.fixture
def redis_server(tmp_path):
    """A throwaway redis-server on a free port; yields (url, restart) where restart() stops it
    for a moment and starts it again on the same port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; CI installs it)")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(tmp_path)]  # fmt: skip
    state = {"process": subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)}
    wait_for_port(port, 10)

    def stop():
        state["process"].kill()
        state["process"].wait(timeout=10)

    def start():
        state["process"] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port, 10)

    try:
        yield f"redis://127.0.0.1:{port}/0", stop, start
    finally:
        if state["process"].poll() is None:
            state["process"].terminate()
            state["process"].wait(timeout=10)

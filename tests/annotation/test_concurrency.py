"""Leases under concurrency: two annotators never hold the same slot and no item collects
more than its overlap. SQLite from threads here; PostgreSQL (SKIP LOCKED) in a throwaway
server when one can be started."""

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connections
from django.db.models import Count

from annotation import actions
from annotation.errors import NothingToAnnotate
from annotation.models import Assignment, AssignmentStatus
from arena.voting.actions import issue_vote_token, judge_for_user

from .conftest import text_rows

ROOT = Path(__file__).resolve().parents[2]


def run_threads(target, args_list):
    barrier = threading.Barrier(len(args_list))
    results, errors = [], []

    def runner(*args):
        try:
            barrier.wait()
            results.append(target(*args))
        except Exception as exc:  # noqa: BLE001 - collected and asserted on
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_one_slot_goes_to_exactly_one_of_many_annotators(make_project, make_user):
    users = [make_user(f"c{i}") for i in range(6)]
    project = make_project(rows=text_rows(1), members=users, overlap=1, gold_fraction=0)

    def lease(user):
        try:
            return actions.next_assignment(project, user).pk
        except NothingToAnnotate:
            return None

    results, errors = run_threads(lease, [(user,) for user in users])
    assert errors == []
    assert len([r for r in results if r is not None]) == 1
    assert Assignment.objects.filter(status=AssignmentStatus.LEASED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_racing_annotators_fill_every_item_exactly_to_overlap(make_project, make_user):
    users = [make_user(f"r{i}") for i in range(5)]
    project = make_project(rows=text_rows(6), members=users, overlap=2, gold_fraction=0)

    def work(user):
        done = 0
        while True:
            try:
                assignment = actions.next_assignment(project, user)
            except NothingToAnnotate:
                return done
            token = issue_vote_token(assignment.item.comparison, judge_for_user(user))
            actions.do_record_submission(
                actions.check_submission(project, user, assignment_id=assignment.pk, token=token, verdict="b")
            )
            done += 1

    results, errors = run_threads(work, [(user,) for user in users])
    assert errors == []
    assert sum(results) == 12
    per_item = Assignment.objects.filter(status=AssignmentStatus.COMPLETED).values("item").annotate(n=Count("pk"))
    assert sorted(row["n"] for row in per_item) == [2] * 6


# --- PostgreSQL -----------------------------------------------------------------------------


def _pg_binaries() -> tuple[str, str] | None:
    for folder in [os.path.dirname(shutil.which("pg_ctl") or ""), *sorted(glob.glob("/usr/lib/postgresql/*/bin"))]:
        initdb, pg_ctl = os.path.join(folder, "initdb"), os.path.join(folder, "pg_ctl")
        if folder and os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return initdb, pg_ctl
    return None


def _as_postgres_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI containers often are root.
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *command]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(command)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def throwaway_postgres():
    """Yield a DATABASE_URL for an empty database, or skip with the reason."""
    given = os.environ.get("DUET_TEST_POSTGRES_URL")
    if given:
        yield from _database_on(given)
        return
    binaries = _pg_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL not installed (no initdb/pg_ctl; apt-get install postgresql) and "
                    "DUET_TEST_POSTGRES_URL is not set")  # fmt: skip
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run a throwaway server as")
    initdb, pg_ctl = binaries
    folder = tempfile.mkdtemp(prefix="duet-pg-")
    os.chmod(folder, 0o777)
    data, port = os.path.join(folder, "data"), _free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    try:
        subprocess.run(_as_postgres_user([initdb, "-D", data, "-U", "duet", "-A", "trust", "--no-sync", "-E", "UTF8"]),
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        options = f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        subprocess.run(_as_postgres_user([pg_ctl, "-D", data, "-o", options, "-w", "-t", "60", "-l",
                                          os.path.join(folder, "log"), "start"]),
                       check=True, capture_output=True, timeout=120)  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"could not start a throwaway PostgreSQL: {exc} {detail.decode(errors='replace')[-300:]}")
    try:
        yield f"postgres://duet@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres_user([pg_ctl, "-D", data, "-m", "immediate", "stop"]), capture_output=True,
                       timeout=60)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def _database_on(url: str):
    """A fresh database on a server someone else runs, dropped afterwards."""
    import psycopg

    name = f"duet_lease_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_postgresql_lease_race():
    with throwaway_postgres() as url:
        env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
        result = subprocess.run(
            [sys.executable, "-m", "tests.annotation.lease_race"], cwd=ROOT, env=env, capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\nPostgreSQL lease race: {report}")
    assert report["vendor"] == "postgresql"
    assert report["errors"] == []
    assert report["items"] == 12 and report["min_per_item"] == report["max_per_item"] == 3

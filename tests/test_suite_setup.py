"""How the suite itself runs: `make test` on two pytest-xdist workers that never share
runtime state, heavy files dealt first, and a serial run that keeps the file order."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from tests import conftest

ROOT = Path(__file__).resolve().parent.parent

SHOW_SETTINGS = (
    "import json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings_test';"
    "from django.conf import settings;"
    "print(json.dumps({'var': str(settings.VAR_DIR), 'db': settings.DATABASES['default']['TEST']['NAME'],"
    " 'broker': str(settings.CELERY_BROKER_FOLDER), 'env': os.environ['DUET_VAR_DIR']}))"
)


def settings_seen_by(env: dict) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", "DUET_TEST_VAR_WORKER")}
    result = subprocess.run([sys.executable, "-c", SHOW_SETTINGS], cwd=ROOT, env={**base, **env},
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_each_xdist_worker_keeps_its_runtime_state_in_a_folder_of_its_own(tmp_path):
    # given the var folder the controller chose, inherited by two workers
    shared = str(tmp_path / "var")
    # when each worker loads the test settings
    gw0 = settings_seen_by({"DUET_VAR_DIR": shared, "PYTEST_XDIST_WORKER": "gw0"})
    gw1 = settings_seen_by({"DUET_VAR_DIR": shared, "PYTEST_XDIST_WORKER": "gw1"})
    # then the database, the broker and the variable its subprocesses inherit are apart
    assert gw0["var"] == str(tmp_path / "var" / "gw0") == gw0["env"]
    assert gw1["var"] == str(tmp_path / "var" / "gw1")
    assert gw0["db"] == str(tmp_path / "var" / "gw0" / "test.sqlite3")
    assert gw0["broker"] == str(tmp_path / "var" / "gw0" / "broker")
    assert (tmp_path / "var" / "gw0").is_dir() and (tmp_path / "var" / "gw1").is_dir()


def test_a_subprocess_of_a_worker_shares_its_folder_and_a_serial_run_is_unchanged(tmp_path):
    worker_folder = str(tmp_path / "var" / "gw0")
    # a subprocess started with the test settings inherits the worker's environment
    child = settings_seen_by({"DUET_VAR_DIR": worker_folder, "PYTEST_XDIST_WORKER": "gw0", "DUET_TEST_VAR_WORKER": "gw0"})
    assert child["var"] == worker_folder
    # without xdist the folder is the one given
    serial = settings_seen_by({"DUET_VAR_DIR": str(tmp_path / "serial")})
    assert serial["var"] == str(tmp_path / "serial")
    assert serial["db"] == str(tmp_path / "serial" / "test.sqlite3")


class FakeItem:
    def __init__(self, nodeid: str, *marks: str):
        self.nodeid = nodeid
        self.marks = set(marks)

    def get_closest_marker(self, name):
        return name if name in self.marks else None


def collected() -> list[FakeItem]:
    return [
        FakeItem("tests/a/test_quick.py::test_one"),
        FakeItem("tests/a/test_quick.py::test_two"),
        FakeItem("tests/b/test_one_browser.py::test_page", "slow", "browser"),
        FakeItem("tests/b/test_one_browser.py::test_plain"),
        FakeItem("tests/c/test_journey.py::test_late[fresh]", "slow"),
        FakeItem("tests/c/test_journey.py::test_early[fresh]"),
        FakeItem("tests/c/test_journey.py::test_late[voted]", "slow"),
        FakeItem("tests/d/test_redis.py::test_restart", "redis"),
        FakeItem("tests/e/test_also_quick.py::test_three"),
    ]


def test_under_xdist_heavy_files_go_first_most_heavy_tests_first_each_file_in_its_order():
    items = collected()
    conftest.pytest_collection_modifyitems(SimpleNamespace(option=SimpleNamespace(numprocesses=2)), items)
    assert [item.nodeid for item in items] == [
        # two heavy tests, in the file's own order (the journey's states stay in order)
        "tests/c/test_journey.py::test_late[fresh]",
        "tests/c/test_journey.py::test_early[fresh]",
        "tests/c/test_journey.py::test_late[voted]",
        # one heavy test each, in collection order
        "tests/b/test_one_browser.py::test_page",
        "tests/b/test_one_browser.py::test_plain",
        "tests/d/test_redis.py::test_restart",
        # the quick files, in collection order
        "tests/a/test_quick.py::test_one",
        "tests/a/test_quick.py::test_two",
        "tests/e/test_also_quick.py::test_three",
    ]


def test_a_serial_run_keeps_the_collection_order(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    items = collected()
    conftest.pytest_collection_modifyitems(SimpleNamespace(option=SimpleNamespace(numprocesses=None)), items)
    assert [item.nodeid for item in items] == [item.nodeid for item in collected()]


def test_make_test_and_test_fast_run_on_pinned_xdist_workers():
    makefile = (ROOT / "Makefile").read_text()
    pytest_command = re.search(r"^PYTEST\s*:=\s*(.+)$", makefile, flags=re.MULTILINE).group(1)
    assert "-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder" in pytest_command
    assert re.search(r"^TEST_WORKERS \?= 2$", makefile, flags=re.MULTILINE)
    assert re.search(r"^test: install\n\t\$\(PYTEST\)\n", makefile, flags=re.MULTILINE)
    assert re.search(r'^test-fast: install\n\t\$\(PYTEST\) -m "not slow"\n', makefile, flags=re.MULTILINE)
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^pytest-xdist==\d+\.\d+\.\d+", requirements, flags=re.MULTILINE)


def test_an_xdist_worker_runs_torch_on_one_thread():
    code = (
        "import os; import tests.conftest as c; c.pytest_configure(None); import torch;"
        "print('THREADS', os.environ['OMP_NUM_THREADS'], torch.get_num_threads())"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    worker = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "PYTEST_XDIST_WORKER": "gw1"},
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    assert "THREADS 1 1" in worker.stdout

"""Settings for the test suite: the production settings with fast hashing, a throwaway
var folder and an in-memory broker (tests that need a real broker start their own)."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DUET_VAR_DIR", tempfile.mkdtemp(prefix="duet-test-var-"))
# Under pytest-xdist (`make test` runs two workers) the controller sets DUET_VAR_DIR above
# and every worker inherits it: each worker keeps its runtime state (broker folders, worker
# records, export scratch, the SQLite test database) in a folder of its own below it. The
# marker keeps a subprocess started with this module from nesting a second level.
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _XDIST_WORKER and os.environ.get("DUET_TEST_VAR_WORKER") != _XDIST_WORKER:
    os.environ["DUET_VAR_DIR"] = str(Path(os.environ["DUET_VAR_DIR"]) / _XDIST_WORKER)
    os.environ["DUET_TEST_VAR_WORKER"] = _XDIST_WORKER
    Path(os.environ["DUET_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
os.environ.setdefault("DUET_MODEL_CACHE", str(Path(__file__).resolve().parent.parent / "var" / "models"))

from .settings import *  # noqa: E402,F403

# MD5 keeps user creation fast; PBKDF2 is there for accounts that subprocesses running
# the production settings must be able to log in with (tests.processes.login_ready).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405

# A file, not memory, so worker and web subprocesses started by tests share the test database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}  # noqa: F405

"""Settings for the test suite: the production settings with fast hashing, a throwaway
var folder and an in-memory broker (tests that need a real broker start their own)."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DUET_VAR_DIR", tempfile.mkdtemp(prefix="duet-test-var-"))
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

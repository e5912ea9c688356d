"""Fixtures of the journey suite: one world per test module, taken forward state by state
(see world.py), and a live server on it for the browser walk.

The world outlives single tests, so it cannot live in pytest-django's per-test
transactions: it is written for real to the test database (SQLite file or PostgreSQL),
with database access unblocked for the module, and the database is flushed when the module
ends so the tests that follow start empty, as they expect.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from .world import ROLES, STATES, World, set_eager


def wanted_states() -> tuple[str, ...]:
    """JOURNEY_STATES=fresh,voted walks a subset while developing (states still build in order)."""
    chosen = [s.strip() for s in os.environ.get("JOURNEY_STATES", "").split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(STATES))
    if unknown:
        raise pytest.UsageError(f"JOURNEY_STATES: unknown state(s) {', '.join(unknown)}; known: {', '.join(STATES)}")
    return tuple(s for s in STATES if s in chosen) or STATES


def pytest_collection_modifyitems(items):
    """The world only moves forward, so the journey's tests run state by state (then role,
    then the order the tests are written in), wherever the other tests are put. Their slots
    in the run stay where they were, so every other test keeps its place."""
    here = Path(__file__).parent / "test_journey.py"
    slots = [i for i, item in enumerate(items) if Path(str(item.path)) == here and hasattr(item, "callspec")]
    order = {"test_pages": 0, "test_api": 1, "test_browser": 2}

    def key(item):
        params = item.callspec.params
        return STATES.index(params["state"]), ROLES.index(params["role"]), order.get(item.originalname, 9)

    for slot, item in zip(slots, sorted((items[i] for i in slots), key=key)):
        items[slot] = item


@pytest.fixture(scope="session")
def journey_database(django_db_setup, django_db_blocker):
    """The test database. pytest-django creates it only when some collected test is marked
    django_db (or uses the db fixtures); run on their own, the journey tests are not, so
    they create it here, as pytest-django would."""
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    if connection.settings_dict["NAME"] == connection.creation._get_test_db_name():
        yield
        return
    with django_db_blocker.unblock():
        created = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        teardown_databases(created, verbosity=0)


@pytest.fixture(scope="module")
def world(journey_database, django_db_blocker, tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("journey")
    overrides = override_settings(
        MEDIA_ROOT=str(folder / "media"),
        TRAINING_RUNS_DIR=folder / "runs",
        ANNOTATION_EXPORT_DIR=folder / "exports",
        VAR_DIR=folder / "var",
        DEMO_TEXT_MODEL=str(tiny_model_dir),
        GENERATION_MAX_NEW_TOKENS=12,
        OPEN_ARENA=False,
        # The walks fetch pages far faster than a person clicks; the limits have their own tests.
        VOTE_RATE_LIMIT="off",
        NEXT_RATE_LIMIT="off",
        CLIENT_RATE_LIMIT="off",
    )
    eager = set_eager(False)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on 2 shared cores: one thread is many times faster
    with django_db_blocker.unblock(), overrides:
        try:
            yield World(tiny_model_dir)
        finally:
            set_eager(eager)
            torch.set_num_threads(threads)
            call_command("flush", interactive=False, verbosity=0)

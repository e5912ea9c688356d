"""The journey: one install taken from fresh to a live battle (world.py), and after each
state change every page and every API endpoint walked as each role.

Three walks per (state, role), each its own test so a failure names the state and role,
and its message every page that failed:

* test_pages: the Django test client follows the links of every page (crawl.py), then
  visits the pages the other roles reached; fails on a server error, or on a 4xx or a
  login redirect where the access policy lets the role in or a page shown to it links there.
* test_api: every GET operation of the OpenAPI schema with real ids (apiwalk.py); the same
  rules.
* test_browser (slow, Chromium): the pages walk in headless Chromium at a 390-px-wide
  viewport; also fails on a console error or an uncaught exception, and on a page wider
  than the viewport.

The tests run in order of state (conftest.py sorts them), so the world is built once.
JOURNEY_STATES=fresh,voted walks only those states.
"""

from __future__ import annotations

import pytest

from . import apiwalk
from .conftest import wanted_states
from .crawl import VIEWPORT, browser_fetcher, client_fetcher, crawl, failures_of, unless_redirected
from .world import PASSWORD, ROLES

pytestmark = pytest.mark.journey

CASES = [(state, role) for state in wanted_states() for role in ROLES]
IDS = [f"{state}-{role}" for state, role in CASES]


def site_walks(world, state: str) -> dict:
    """Each role's client walk of this state, done once and shared by the tests that need it."""
    key = ("pages", state)
    if key not in world.memo:
        world.memo[key] = {role: crawl(client_fetcher(world.client(role)), role, ["/"]) for role in ROLES}
    return world.memo[key]


def reached(walks: dict) -> list[str]:
    """Every page some role reached, in a stable order."""
    return sorted({visit.url for visits in walks.values() for visit in visits})


@pytest.mark.parametrize("state, role", CASES, ids=IDS)
def test_pages(world, state, role):
    world.advance_to(state)
    walks = site_walks(world, state)
    own = {visit.url for visit in walks[role]}
    others = [url for url in reached(walks) if url not in own]
    visits = walks[role] + crawl(client_fetcher(world.client(role)), role, [], also=others, downloads=True)
    failures = failures_of(visits, role, state)
    assert not failures, f"{len(failures)} of {len(visits)} pages failed:\n" + "\n".join(failures)


@pytest.mark.parametrize("state, role", CASES, ids=IDS)
def test_api(world, state, role):
    world.advance_to(state)
    client = world.client(role)
    paths = apiwalk.schema_paths(client)
    visits, _ = apiwalk.walk(world, client, role, paths)
    failures = failures_of(visits, role, state)
    assert not failures, f"{len(failures)} of {len(visits)} endpoints failed:\n" + "\n".join(failures)


@pytest.fixture(scope="module")
def journey_server(world):
    """A live server in this process, on the world's database (threads, so its requests see
    what the world wrote as soon as it is committed)."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer("127.0.0.1:0")
    server._live_server_modified_settings.enable()
    yield server.url
    server._live_server_modified_settings.disable()
    server.stop()


def log_in(page, origin: str, role: str) -> None:
    page.goto(f"{origin}/accounts/login/")
    page.fill("#id_username", role)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{origin}/")


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("state, role", CASES, ids=IDS)
def test_browser(world, journey_server, browser, state, role):
    world.advance_to(state)
    walks = site_walks(world, state)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        if role != "anonymous":
            log_in(page, journey_server, role)
        fetch = browser_fetcher(page, journey_server)
        # Layout and scripts: one page of each kind is enough (the client walks see them all).
        visits = crawl(fetch, role, ["/"], also=reached(walks), origin=journey_server, admin_by_view=True, per_kind=1,
                       fetch_also=unless_redirected(page, journey_server, fetch))  # fmt: skip
    finally:
        context.close()
    failures = failures_of(visits, role, state)
    assert not failures, f"{len(failures)} of {len(visits)} pages failed:\n" + "\n".join(failures)

"""Script in model outputs, prompts and system names stays inert in the arena (before and
after the reveal), on the leaderboard and in the admin, checked in headless Chromium.

The page fixture bypasses the Content-Security-Policy, so these show that escaping and
the sanitiser alone keep the payloads inert; the CSP is a second fence on top."""

import pytest

from arena.board.snapshots import default_arena, refresh_arena
from arena.models import Battle, Output, Prompt, System

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NAME_A = "<script>window.__pwned='name-a'</script>evil-a"
NAME_B = '<img src=x onerror="window.__pwned=\'name-b\'">evil-b'
PROMPT = (
    "Summarise <script>window.__pwned='prompt'</script> this "
    "[click](javascript:window.__pwned='prompt-link') <b onmouseover=\"window.__pwned='hover'\">now</b>"
)
OUTPUT = (
    "Sure!<script>window.__pwned='output'</script>"
    '<img src="nope.png" onerror="window.__pwned=\'onerror\'">'
    "[link](javascript:window.__pwned='link') "
    '<a href="javascript:window.__pwned=\'a-href\'">raw link</a> '
    '<svg onload="window.__pwned=\'svg\'"></svg><iframe src="javascript:window.__pwned=\'iframe\'"></iframe>'
)


@pytest.fixture
def hostile_arena(db, make_user):
    systems = [System.objects.create(name=NAME_A), System.objects.create(name=NAME_B)]
    prompt = Prompt.objects.create(text=PROMPT)
    for system in systems:
        Output.objects.create(system=system, prompt=prompt, text=OUTPUT)
    arena = default_arena()
    Battle.objects.bulk_create([
        Battle(arena=arena, system_a=systems[k % 2], system_b=systems[1 - k % 2], outcome="a", source="import",
               tstamp=prompt.created_at)
        for k in range(30)
    ])  # fmt: skip
    refresh_arena(arena)
    return systems, prompt


def assert_inert(page, where: str) -> None:
    # give any handler a chance to fire: images fail to load, hovers, focus
    page.mouse.move(200, 200)
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None, f"{where}: script ran ({page.evaluate('window.__pwned')})"
    assert page.dialogs == [] and page.errors == [], f"{where}: {page.dialogs} {page.errors}"
    injected = page.evaluate(
        """() => {
            const bad = [];
            for (const el of document.querySelectorAll('main *, #sides *, table *, svg *, form *')) {
                // a JSON data block (json_script) never runs; any other inline script would
                    if (el.tagName === 'SCRIPT' && !el.src && el.type !== 'application/json') bad.push('inline script');
                if (el.tagName === 'IFRAME') bad.push('iframe');
                for (const attr of el.attributes) {
                    if (attr.name.startsWith('on')) bad.push(el.tagName + ' ' + attr.name);
                    if (/^\\s*javascript:/i.test(attr.value)) bad.push(el.tagName + ' ' + attr.name + '=javascript:');
                }
            }
            return bad;
        }"""
    )
    assert injected == [], f"{where}: live markup from the payload: {injected}"


@pytest.fixture
def watched(page):
    """The shared browser page, with dialogs recorded."""
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    return page


def test_arena_and_reveal_keep_hostile_text_inert(watched, live_server, login, annotator, hostile_arena):
    page = watched
    login(page, "ann")
    page.wait_for_selector("#body-a p")
    # the prompt and both outputs are shown as text, their markup neutralised
    assert "Sure!" in page.inner_text("#sides")
    assert_inert(page, "arena")
    # after the vote the names are revealed, as text
    page.keyboard.press("1")
    page.wait_for_selector("#identity-a:not([hidden])")
    revealed = {page.inner_text("#identity-a"), page.inner_text("#identity-b")}
    assert revealed == {NAME_A, NAME_B}
    assert_inert(page, "reveal")


def test_leaderboard_keeps_hostile_names_inert(watched, live_server, login, annotator, hostile_arena):
    page = watched
    login(page, "ann")
    page.goto(f"{live_server.url}/leaderboard/")
    page.wait_for_selector("table")
    body = page.inner_text("body")
    assert "evil-a" in body and "<script>" in body  # shown, escaped
    assert_inert(page, "leaderboard")


@pytest.mark.parametrize("path", ["/admin/arena/system/", "/admin/arena/output/", "/admin/arena/prompt/",
                                  "/admin/arena/output/{output}/change/", "/admin/arena/system/{system}/change/"])
def test_admin_pages_keep_hostile_text_inert(watched, live_server, login, admin_user, hostile_arena, path):
    page = watched
    systems, prompt = hostile_arena
    login(page, "boss")
    page.goto(live_server.url + path.format(output=Output.objects.first().pk, system=systems[0].pk))
    page.wait_for_selector("#content")
    assert page.locator("text=Page not found").count() == 0
    assert_inert(page, path)

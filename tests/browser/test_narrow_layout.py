"""The main pages on a 390 px wide phone: nothing makes the page scroll sideways (the
navigation wraps; tables and code blocks scroll inside their own box), and every control
wears the site's style rather than the browser's default look."""

import pytest

from annotation import actions as annotation_actions
from arena.board.snapshots import default_arena, refresh_arena
from arena.models import Output

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH = 390
WIDE_ANSWER = (
    "Here is a table:\n\n| column one | column two | column three | column four | column five |\n"
    "|---|---|---|---|---|\n| " + " | ".join(["a-rather-long-cell-value"] * 5) + " |\n\n"
    "And code:\n\n```python\nresult = some_function_with_a_long_name(argument_one, argument_two, argument_three)\n```\n"
)
PAGES = [
    ("arena", "/?modality=text", "#body-a table"),
    ("live arena", "/?mode=live", "#ask textarea"),
    ("leaderboard", "/leaderboard/", "#board"),
    ("projects list", "/projects/", "main h1"),
    ("training", "/training/", "#runs"),
    ("routing overview", "/routing/", "#routing-projects"),
]

# Lists the elements that stick out past the viewport, for the failure message.
OVERFLOWING = """(width) => Array.from(document.querySelectorAll('body *'))
  .filter((e) => e.getBoundingClientRect().right > width + 0.5 && e.getClientRects().length)
  .slice(0, 8).map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '')
    + ' right=' + Math.round(e.getBoundingClientRect().right))"""

# A control has the browser's default look when it keeps the look of the same control on
# a page without Duet's stylesheet (the reference is made in an about:blank frame).
DEFAULT_LOOK = """() => {
  const look = (s) => [s.backgroundColor, s.borderTopStyle, s.borderTopWidth, s.borderTopColor, s.fontSize].join(' ');
  const frame = document.createElement('iframe');
  document.body.appendChild(frame);
  const blank = frame.contentDocument;
  const reference = {};
  for (const [key, html] of [['button', '<button>x</button>'], ['select', '<select><option>x</option></select>'],
                             ['input', '<input type="text">'], ['textarea', '<textarea></textarea>']]) {
    blank.body.innerHTML = html;
    reference[key] = look(frame.contentWindow.getComputedStyle(blank.body.firstChild));
  }
  frame.remove();
  const controls = document.querySelectorAll('button, select, textarea, input:not([type=hidden]):not([type=checkbox]):not([type=radio])');
  return Array.from(controls).filter((c) => c.getClientRects().length)
    .map((c) => [c.outerHTML.slice(0, 80), look(getComputedStyle(c)), reference[c.tagName.toLowerCase()]])
    .filter(([, mine, browser]) => mine === browser || mine.endsWith(' ' + browser.split(' ').pop()));
}"""


@pytest.fixture
def filled_duet(arena_factory, admin_user, annotator, client_for):
    """An arena with votes and a board, a project, and an admin who sees every page."""
    systems, _ = arena_factory("text", n_systems=3, n_prompts=3, text=WIDE_ANSWER)
    Output.objects.filter(system=systems[0]).update(metadata={"finish_reason": "length", "tokens": 384})
    voter = client_for(annotator)
    for _ in range(6):
        served = voter.get("/api/arena/next/", {"modality": "text"}).json()
        voter.post("/api/arena/vote/", {"token": served["token"], "verdict": "a"}, format="json")
    refresh_arena(default_arena())
    project = annotation_actions.create_project(name="A project with a rather long name for a phone screen")
    annotation_actions.add_member(project, admin_user)
    return admin_user


def narrow_page(browser):
    context = browser.new_context(viewport={"width": WIDTH, "height": 800}, bypass_csp=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return context, page


def check_page(page, name):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{name}: the page is {width} px wide: {page.evaluate(OVERFLOWING, WIDTH)}"
    default_controls = page.evaluate(DEFAULT_LOOK)
    assert not default_controls, f"{name}: controls with the browser's default look: {default_controls}"


def test_main_pages_fit_a_phone_and_style_every_control(browser, live_server, filled_duet):
    context, page = narrow_page(browser)
    try:
        # the login page, logged out
        page.goto(f"{live_server.url}/accounts/login/")
        check_page(page, "login")
        page.fill("#id_username", "boss")
        page.fill("#id_password", "correct-horse-battery")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        # every page of the navigation, its navigation wrapped onto the screen
        for name, path, ready in PAGES:
            page.goto(f"{live_server.url}{path}")
            page.wait_for_selector(ready)
            nav = page.evaluate("document.querySelector('.topbar nav').getBoundingClientRect().right")
            assert nav <= WIDTH, f"{name}: the navigation reaches {nav} px"
            check_page(page, name)
        # the arena's wide table and code block scroll inside the answer
        page.goto(f"{live_server.url}/?modality=text")
        page.wait_for_selector("#body-a table")
        assert page.evaluate("document.querySelector('#body-a pre').scrollWidth > document.querySelector('#body-a pre').clientWidth")
        assert page.errors == []
    finally:
        context.close()

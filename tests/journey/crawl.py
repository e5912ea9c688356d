"""Walking the site as one role: follow the links each page shows (same origin, bounded),
then visit on purpose the pages the other roles reach, and judge every answer against the
access policy of tests/reliability/test_permission_matrix.py.

The walk itself does not know how pages are fetched: `crawl` takes a fetch function, the
Django test client's (here) or headless Chromium's (test_journey.py), that returns a `Page`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

from django.conf import settings
from django.test import Client
from django.urls import Resolver404, resolve

from tests.reliability.test_permission_matrix import policy_for

# Bounds: a walk visits each kind of page (URL name and query keys) a few times, whatever
# the number of objects, and the Django admin's pages once each.
PER_KIND = 3
PER_ADMIN_KIND = 1
# Query parameters that switch what a page does (its script, its data), so each value is a
# kind of page of its own: the arena's modalities and modes, the leaderboard's modalities.
BEHAVIOUR_PARAMS = ("modality", "mode")
MAX_PAGES = 200
LOGIN_PATHS = ("/accounts/login/", "/admin/login/")
# A 404 in Duet's error shape with one of these codes is the answer "your queue is empty"
# (nothing to vote on, nothing left to annotate), not a page that is missing or refused.
EMPTY_QUEUE_CODES = {"nothing_to_compare", "nothing_to_annotate"}

# The rows of the access policy that depend on membership (None there), as the world's
# memberships decide them: the annotator is an annotator-member of every project, the
# researcher a reviewer-member, the admin no member at all (but a manager).
MEMBERS_ONLY = {"annotation:work", "annotation_api:project-next"}  # annotating needs a membership
MEMBERS_AND_MANAGERS = {
    "annotation:list", "annotation:detail", "annotation_api:project-list", "annotation_api:project-detail",
    "annotation_api:project-progress",
}  # fmt: skip
WORLD_MEMBERS = {"annotator", "researcher"}
MANAGERS = {"researcher", "admin"}


def by_membership(name: str, role: str) -> bool | None:
    if not name.startswith("annotation"):
        return None
    if name in MEMBERS_ONLY:
        return role in WORLD_MEMBERS
    if name in MEMBERS_AND_MANAGERS:
        return role in WORLD_MEMBERS | MANAGERS
    return role in MANAGERS  # members, settings, conflicts, items: managers and reviewers


@dataclass
class Page:
    """What fetching a URL gave: the status (the first answer: a redirect stays a redirect),
    where a redirect pointed, the links the page shows and what went wrong in it."""

    status: int
    location: str = ""
    links: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    download: bool = False
    code: str = ""  # the "error" of a JSON error body


@dataclass
class Visit:
    url: str
    name: str
    status: int
    allowed: bool | None  # what the policy says for this role; None: it depends
    linked: bool  # a page this role saw links to it
    problems: list[str] = field(default_factory=list)
    code: str = ""
    via: str = ""  # the first page that linked here

    def failures(self, role: str, state: str) -> list[str]:
        where = f"[{state}] {role} GET {self.url} ({self.name or 'no URL name'})"
        found = [f"{where}: {problem}" for problem in self.problems]
        if self.status >= 500:
            found.append(f"{where}: server error {self.status}")
        elif self.status == 404 and self.code in EMPTY_QUEUE_CODES:
            pass
        elif self.status >= 400 or self.status == LOGIN_REDIRECT:
            if self.allowed:
                found.append(f"{where}: {describe(self.status)}, but the access policy lets {role} in")
            elif self.linked and not (role == "anonymous" and self.status == LOGIN_REDIRECT):
                # A link that leads to a refusal is a dead end the page offered; only a
                # visitor who is not logged in is expected to meet the login page that way.
                found.append(f"{where}: {describe(self.status)}, but a page shown to {role} links here"
                             + (f" ({self.via})" if self.via else ""))
        return found


LOGIN_REDIRECT = 399  # a redirect to a login page, told apart from other redirects


def describe(status: int) -> str:
    return "redirected to log in" if status == LOGIN_REDIRECT else f"status {status}"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def html_links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


def url_name(path: str) -> tuple[str, str]:
    """The URL's name as the policy spells it ("namespace:name"), and its route."""
    try:
        match = resolve(urlsplit(path).path)
    except Resolver404:
        return "", ""
    return (match.view_name if match.url_name else ""), match.route


def allowed_for(role: str, path: str) -> bool | None:
    """Whether `role` may GET `path` by the access policy (None: it depends on more)."""
    name, route = url_name(path)
    policy = policy_for(name, route, "GET")
    if policy is None:
        return None
    allowed = policy[role]
    if allowed == "open":
        return bool(settings.OPEN_ARENA)
    if allowed is None and role != "anonymous":
        return by_membership(name, role)
    return allowed


def is_download(path: str) -> bool:
    parts = urlsplit(path)
    return (
        "/download/" in parts.path
        or parts.path.startswith("/" + settings.MEDIA_URL.strip("/") + "/")
        or parts.path == "/api/schema/"
        or any(key == "download" for key, _ in parse_qsl(parts.query))
    )


def skipped(path: str) -> bool:
    """Links a walk never follows: logging out, delete confirmations, the admin's filtered
    and sorted variants of a list and its history pages."""
    parts = urlsplit(path)
    if parts.path in ("/accounts/logout/", "/admin/logout/") or "/delete/" in parts.path:
        return True
    return parts.path.startswith("/admin/") and (bool(parts.query) or parts.path.endswith("/history/"))


def kind_of(path: str, admin_by_view: bool = False) -> tuple:
    """What makes two URLs the same kind of page: their URL name and query keys. With
    `admin_by_view`, the Django admin's pages are told apart by view only (one changelist,
    one change form, ... whatever the model)."""
    parts = urlsplit(path)
    name, _ = url_name(path)
    if admin_by_view and name.startswith("admin:"):
        return "admin", name.rsplit("_", 1)[-1] if re.match(r"admin:\w+_\w+_\w+$", name) else name
    query = parse_qsl(parts.query)
    switches = tuple(sorted((key, value) for key, value in query if key in BEHAVIOUR_PARAMS))
    return name or parts.path, tuple(sorted({key for key, _ in query})), switches


def same_site(href: str, base: str, origin: str) -> str | None:
    """The link as a path (with query), or None when it leaves the site or is no page."""
    absolute = urljoin(base, href)
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or f"{parts.scheme}://{parts.netloc}" != origin:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def crawl(fetch: Callable[[str], Page], role: str, start: Iterable[str], also: Iterable[str] = (),
          origin: str = "http://testserver", downloads: bool = False, admin_by_view: bool = False,
          per_kind: int = PER_KIND, fetch_also: Callable[[str], Page] | None = None) -> list[Visit]:  # fmt: skip
    """Follow links from `start`, `per_kind` pages of each kind; then visit `also` (what
    other roles reached), once per kind, unless this role already did, with `fetch_also`
    if given. Downloads are fetched only if asked; the admin's pages once per view if
    `admin_by_view` (kind_of)."""
    visits: list[Visit] = []
    seen: set[str] = set()
    counts: Counter = Counter()
    linked: dict[str, str] = dict.fromkeys(start, "")  # path -> the first page that links to it
    queue = list(start)

    def visit(path: str, deliberate: bool) -> None:
        kind = kind_of(path, admin_by_view or deliberate)
        limit = PER_ADMIN_KIND if path.startswith("/admin/") or deliberate else per_kind
        if path in seen or skipped(path) or counts[kind] >= limit or len(visits) >= MAX_PAGES:
            return
        if is_download(path) and not downloads:
            return
        seen.add(path)
        counts[kind] += 1
        page = (fetch_also or fetch)(path) if deliberate else fetch(path)
        if page.download:
            return
        status = page.status
        if status in (301, 302, 303, 307, 308):
            target = same_site(page.location, origin + path, origin)
            if target and urlsplit(target).path in LOGIN_PATHS and urlsplit(path).path not in LOGIN_PATHS:
                status = LOGIN_REDIRECT
            if target:
                linked.setdefault(target, path)
                queue.append(target)
        visits.append(Visit(path, url_name(path)[0], status, allowed_for(role, path), path in linked, page.problems,
                            page.code, linked.get(path, "")))  # fmt: skip
        for href in page.links:
            target = same_site(href, origin + path, origin)
            if target and target not in seen:
                linked.setdefault(target, path)
                queue.append(target)

    while queue:
        visit(queue.pop(0), deliberate=False)
    for path in also:
        visit(path, deliberate=True)
    return visits


def client_fetcher(client: Client) -> Callable[[str], Page]:
    """Fetch with the Django test client: the first answer, never following redirects."""

    def fetch(path: str) -> Page:
        response = client.get(path)
        location = response.get("Location", "")
        if getattr(response, "streaming", False):
            response.close()  # a download or an event stream: its status is what counts
            return Page(response.status_code, location)
        links, kind = [], response.get("Content-Type", "")
        if kind.startswith("text/html"):
            links = html_links(response.content.decode(errors="replace"))
        return Page(response.status_code, location, links, code=error_code(response))

    return fetch


def error_code(response) -> str:
    if response.status_code < 400 or not response.get("Content-Type", "").startswith("application/json"):
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def failures_of(visits: list[Visit], role: str, state: str) -> list[str]:
    return [failure for visit in visits for failure in visit.failures(role, state)]


# --- headless Chromium ------------------------------------------------------------------------

VIEWPORT = {"width": 390, "height": 844}
# Requests a page's own scripts make after it loads (the arena's next pair, a job's progress):
# the walk waits for them, so their failures and the console errors they cause are caught.
SCRIPT_REQUESTS = ("fetch", "xhr")
SETTLE_SECONDS = 3.0

OVERFLOW = "() => document.scrollingElement ? document.scrollingElement.scrollWidth : 0"
LINKS = "els => els.map(e => e.href)"


def browser_fetcher(page, origin: str) -> Callable[[str], Page]:
    """Fetch with a Playwright page: load the URL, wait for the requests its scripts make,
    collect console errors and uncaught exceptions, measure the width, read the links."""
    import time

    from playwright.sync_api import Error as PlaywrightError

    messages: list[str] = []
    inflight: set = set()
    def on_console(message):
        if message.type == "error":
            source = (message.location or {}).get("url", "")
            messages.append(message.text + (f" [{source}]" if source and source != page.url else ""))

    page.on("console", on_console)
    page.on("pageerror", lambda error: messages.append(f"uncaught {error}"))
    page.on("request", lambda request: inflight.add(request) if request.resource_type in SCRIPT_REQUESTS else None)
    page.on("requestfinished", lambda request: inflight.discard(request))
    page.on("requestfailed", lambda request: inflight.discard(request))

    def fetch(path: str) -> Page:
        messages.clear()
        try:
            response = page.goto(origin + path, wait_until="load", timeout=30_000)
        except PlaywrightError as error:
            if "Download is starting" in str(error):
                return Page(200, download=True)
            return Page(0, problems=[f"the browser could not load it: {str(error).splitlines()[0]}"])
        first = response.request
        while first.redirected_from is not None:
            first = first.redirected_from
        if first is not response.request:  # a redirect: its target is visited on its own
            answer = first.response()
            return Page(answer.status, answer.headers.get("location", ""))
        deadline = time.monotonic() + SETTLE_SECONDS
        while inflight and time.monotonic() < deadline:
            page.wait_for_timeout(25)
        status, problems = response.status, []
        for text in messages:
            # The console reports the page's own 4xx; on a visit meant to be refused, that is the point.
            own_status = f"Failed to load resource: the server responded with a status of {status}"
            if status >= 400 and text.startswith(own_status):
                continue
            problems.append(f"console: {text}")
        if inflight:
            problems.append(f"requests still open after {SETTLE_SECONDS} s: {sorted(r.url for r in inflight)}")
        if "html" in response.headers.get("content-type", ""):
            width = page.evaluate(OVERFLOW)
            if width > VIEWPORT["width"]:
                problems.append(f"{width} px wide at a {VIEWPORT['width']}-px viewport (horizontal overflow)")
        links = page.eval_on_selector_all("a[href]", LINKS)
        return Page(status, links=links, problems=problems)

    return fetch


def unless_redirected(page, origin: str, fetch: Callable[[str], Page]) -> Callable[[str], Page]:
    """`fetch`, but a URL that answers with a redirect (to the login page, mostly) is not
    loaded: its first answer is all the walk judges, and rendering the login page forty
    times over tells nothing new."""

    def first_answer(path: str) -> Page:
        response = page.request.get(origin + path, max_redirects=0)
        try:
            if 300 <= response.status < 400:
                return Page(response.status, response.headers.get("location", ""))
        finally:
            response.dispose()
        return fetch(path)

    return first_answer

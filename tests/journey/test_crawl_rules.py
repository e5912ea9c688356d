"""The walk's own rules, on made-up sites: what it follows, what it leaves, and how it
judges an answer against the access policy. No database: a dict stands in for the site."""

import pytest

from .crawl import LOGIN_REDIRECT, Page, Visit, allowed_for, crawl, kind_of, skipped


def site(pages: dict):
    """A fetch function over {path: Page}; records what was fetched."""
    fetched = []

    def fetch(path):
        fetched.append(path)
        return pages.get(path, Page(404))

    return fetch, fetched


def test_it_follows_links_on_the_site_only_and_skips_logout_delete_and_downloads():
    fetch, fetched = site({
        "/": Page(200, links=["/leaderboard/", "https://elsewhere.example/", "mailto:x@y.z", "/accounts/logout/",
                              "/admin/arena/system/1/delete/", "/leaderboard/download/csv/", "#top"]),
        "/leaderboard/": Page(200, links=["/"]),
    })  # fmt: skip
    visits = crawl(fetch, "researcher", ["/"])
    assert fetched == ["/", "/leaderboard/"]
    assert all(visit.linked for visit in visits)


def test_a_kind_of_page_is_visited_a_bounded_number_of_times():
    items = [f"/projects/1/items/{i}/" for i in range(1, 20)]
    fetch, fetched = site({"/": Page(200, links=items), **{item: Page(200) for item in items}})
    crawl(fetch, "admin", ["/"], per_kind=3)
    assert len(fetched) == 1 + 3
    # each modality of the arena is its own kind: its script differs
    assert kind_of("/?modality=text") != kind_of("/?modality=audio")
    assert kind_of("/projects/1/items/2/") == kind_of("/projects/1/items/3/")


def test_a_redirect_to_the_login_page_counts_as_a_refusal_and_the_login_page_is_visited():
    fetch, fetched = site({
        "/training/": Page(302, location="/accounts/login/?next=/training/"),
        "/accounts/login/?next=/training/": Page(200),
    })  # fmt: skip
    visits = crawl(fetch, "anonymous", ["/training/"])
    assert visits[0].status == LOGIN_REDIRECT and fetched[1] == "/accounts/login/?next=/training/"


@pytest.mark.parametrize(
    "role, path, status, linked, fails",
    [
        ("annotator", "/training/", 403, False, False),  # refused, as the policy says
        ("annotator", "/training/", 403, True, True),  # ... but a page offered the annotator that link
        ("anonymous", "/training/", LOGIN_REDIRECT, True, False),  # a link to log in first
        ("researcher", "/training/", 403, False, True),  # refused, but the policy lets researchers in
        ("anonymous", "/projects/", LOGIN_REDIRECT, False, False),
        ("annotator", "/projects/", LOGIN_REDIRECT, False, True),
        ("admin", "/training/", 500, False, True),  # a server error fails whoever asks
        ("anonymous", "/training/", 500, False, True),
        ("annotator", "/projects/1/review/", 403, False, False),  # reviewers' page: not the annotator's
        ("admin", "/projects/1/work/", 403, False, False),  # annotating needs a membership
        ("admin", "/admin/arena/judgment/1/delete/", 403, True, True),  # "it depends", but shown as a link
        ("admin", "/admin/arena/judgment/1/delete/", 403, False, False),
        ("annotator", "/api/arena/next/", 404, False, True),
    ],
)
def test_answers_are_judged_against_the_access_policy(role, path, status, linked, fails):
    visit = Visit(path, "", status, allowed_for(role, path), linked)
    assert bool(visit.failures(role, "fresh")) == fails


def test_an_empty_queue_is_an_answer_not_a_failure():
    visit = Visit("/api/arena/next/", "arena-next", 404, True, False, code="nothing_to_compare")
    assert visit.failures("annotator", "fresh") == []


def test_problems_seen_in_the_browser_fail_the_page():
    visit = Visit("/", "arena:arena", 200, True, True, problems=["520 px wide at a 390-px viewport"])
    expected = "[voted] annotator GET / (arena:arena): 520 px wide at a 390-px viewport"
    assert visit.failures("annotator", "voted") == [expected]


def test_skipped_links():
    assert skipped("/admin/logout/") and skipped("/admin/arena/output/?o=1")
    assert skipped("/admin/arena/output/1/history/")
    assert not skipped("/admin/arena/output/1/change/") and not skipped("/?modality=image")

"""The arena page in headless Chromium: the voter tags a comparison's category while voting,
and the tag lands on the judgment and its battle; the next comparison starts untagged."""

import pytest

from arena.models import Battle, Judgment

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_tag_a_category_while_voting(page, live_server, login, annotator, arena_factory, settings):
    # given an arena whose operator lists two categories
    settings.ARENA_CATEGORIES = ["coding", "maths"]
    arena_factory("text", n_systems=2, n_prompts=2)
    login(page, "ann")
    page.wait_for_selector("#body-a p")
    # when the voter tags "maths" and votes A
    page.select_option("#category", "maths")
    page.click("button.vote[data-verdict=a]")
    page.wait_for_selector("#identity-a:not([hidden])")
    # then the judgment and its battle carry the tag
    judgment = Judgment.objects.get()
    assert judgment.metadata["category"] == "maths" and Battle.objects.get().category == "maths"
    # and the next comparison starts untagged; voting on it leaves the category empty
    page.click("#next")
    page.wait_for_selector("#identity-a[hidden]", state="attached")
    assert page.input_value("#category") == ""
    page.click("button.vote[data-verdict=b]")
    page.wait_for_function("Array.from(document.querySelectorAll('.identity')).every(e => !e.hidden)")
    assert sorted(Battle.objects.values_list("category", flat=True)) == ["", "maths"]
    # and with every pair judged, no comparison is shown, and neither is the tag
    page.click("#next")
    page.wait_for_selector("#votes", state="hidden")
    page.wait_for_timeout(1000)  # the answer to "next" has come: nothing is left
    assert page.is_hidden("#votes") and page.is_hidden("p.category-tag")

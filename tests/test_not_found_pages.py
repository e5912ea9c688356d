"""A 404 on a local install (DEBUG on, as `make run` has it) is the site's page, not Django's
technical one (found walking `make run`: a mistyped address showed the URL patterns)."""

import pytest
from django.test import Client


@pytest.fixture
def debug_on(settings):
    settings.DEBUG = True


@pytest.mark.django_db
def test_an_unknown_address_gets_the_sites_page_with_debug_on(debug_on, annotator):
    client = Client()
    client.force_login(annotator)
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert b"URLconf" not in page.content and b"DEBUG = True" not in page.content
    assert b"There is no page at /no-such-page/." in page.content
    assert b'class="topbar"' in page.content  # the site's layout, with its navigation


@pytest.mark.django_db
def test_a_view_that_finds_nothing_gets_the_sites_page_with_debug_on(debug_on, researcher):
    client = Client()
    client.force_login(researcher)
    page = client.get("/projects/987654/")
    assert page.status_code == 404
    assert b"DEBUG = True" not in page.content
    assert b'class="topbar"' in page.content and b'id="error-page"' in page.content


@pytest.mark.django_db
def test_the_api_still_answers_json_with_debug_on(debug_on, annotator):
    client = Client()
    client.force_login(annotator)
    answer = client.get("/api/no-such-endpoint/")
    assert answer.status_code == 404
    assert answer["Content-Type"].startswith("application/json")

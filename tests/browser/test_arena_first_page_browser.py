"""Right after `make run`: the arena opens where comparisons are ready, says text answers are
on their way, and shows the first text comparison as soon as it exists, without a reload."""

import pytest

from arena.models import Output, Prompt, Provider, System

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_text_appears_without_a_reload(page, live_server, login, annotator, arena_factory):
    # given image and audio ready, and two text systems that have not answered yet
    arena_factory("image", n_systems=2, n_prompts=1)
    arena_factory("audio", n_systems=2, n_prompts=1)
    systems = [System.objects.create(name=f"smol-{i}", provider=Provider.TRANSFORMERS) for i in range(2)]
    prompt = Prompt.objects.create(text="Why is the sea salty?", modality="text")
    Prompt.objects.create(text="Name three rivers.", modality="text")

    # when the arena opens
    login(page, "ann")
    # then it shows an image comparison and says where text stands
    page.wait_for_selector("#body-a img.output-image")
    assert page.get_attribute("#arena", "data-modality") == "image"
    assert page.inner_text("#readiness") == (
        "Text answers are being generated (0 of 4 ready); image and audio comparisons are ready now."
    )

    # on the text tab it waits, saying so, without an error
    page.click(".tab[data-modality=text]")
    page.wait_for_function("document.getElementById('status').textContent.includes('as soon as')")
    assert page.is_hidden("#sides")
    page.evaluate("window.__same_page = true")

    # when the worker writes both systems' answers to one prompt
    for system in systems:
        Output.objects.create(system=system, prompt=prompt, text=f"Rivers carry minerals, says {system.pk}.")

    # then the comparison appears on the same page (the page polls readiness)
    page.wait_for_selector("#body-a p", timeout=15000)
    assert page.evaluate("window.__same_page") is True
    assert "Why is the sea salty?" in page.inner_text("#prompt-body")
    assert page.is_enabled("button.vote[data-verdict=a]")
    assert page.errors == []

"""Live battle in headless Chromium against a real web server and worker: type a prompt,
watch both answers stream in, follow up, vote, see the identities."""

import pytest

from arena.models import Judgment, LiveGeneration, System
from tests import processes

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def duet(tmp_path, tiny_model_dir, annotator):
    config = {"model": str(tiny_model_dir), "max_new_tokens": 48, "temperature": 0.8, "top_p": 0.95}
    System.objects.create(name="tiny-left", provider="transformers", provider_config=config)
    System.objects.create(name="tiny-right", provider="transformers", provider_config={**config, "seed": 7})
    processes.login_ready(annotator)
    env = processes.process_env(tmp_path)
    worker = processes.start_worker(env, tmp_path, concurrency=2)
    web, url = processes.start_web(env, tmp_path)
    yield url
    web.stop()
    worker.stop()


def test_live_battle_in_the_browser(page, duet):
    url = duet
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", "ann")
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    page.click("#mode-live")
    page.wait_for_selector("#message")

    # the prompt goes out; both answers stream in
    page.fill("#message", "Tell me about the sea.")
    page.click("#send")
    page.wait_for_selector("#sides:not([hidden])")
    assert page.is_hidden("#identity-a")
    page.wait_for_function("!document.querySelector('button.vote[data-verdict=a]').disabled", timeout=120000)
    for side in ("a", "b"):
        assert page.inner_text(f"#conv-{side} .user") == "Tell me about the sea."
        assert page.inner_text(f"#conv-{side} .answer").strip()
    updates = [int(page.get_attribute(f"#conv-{side}", "data-updates")) for side in ("a", "b")]
    assert max(updates) >= 2, f"text should arrive in pieces, saw {updates} updates"

    # a follow-up is answered by both, with their own conversations
    page.fill("#follow-message", "And about rivers?")
    page.click("#send-follow-up")
    page.wait_for_function("document.querySelectorAll('#conv-a .user').length === 2")
    # both sides must finish the second turn: voting stays open while a follow-up streams
    # and then judges the last complete pair, which would be the first turn
    for side in ("a", "b"):
        page.wait_for_function(
            f"document.querySelectorAll('#conv-{side} .answer:not(.waiting):not(.streaming)').length === 2",
            timeout=120000,
        )
    page.wait_for_function("!document.querySelector('button.vote[data-verdict=a]').disabled")

    # vote with the keyboard; the identities are revealed
    page.keyboard.press("2")
    page.wait_for_selector("#identity-a:not([hidden])")
    names = {page.inner_text("#identity-a"), page.inner_text("#identity-b")}
    assert names == {"tiny-left", "tiny-right"}
    judgment = Judgment.objects.get()
    assert judgment.verdict == "b" and judgment.metadata["turns"] == 2
    assert LiveGeneration.objects.filter(status="done").count() == 4

    # new round starts over
    page.keyboard.press("n")
    page.wait_for_selector("#message")
    assert page.is_visible("#ask") and page.is_hidden("#sides")
    assert page.errors == []

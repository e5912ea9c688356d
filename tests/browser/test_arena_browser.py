"""The arena in headless Chromium: log in, vote with the keyboard on text, image and audio,
see the identities, and check hostile outputs stay inert."""

import pytest

from arena.models import Judgment, Output

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE = (
    "Sure!<script>window.__pwned = 'script'</script>"
    '<img src="nope.png" onerror="window.__pwned = \'onerror\'">'
    "[link](javascript:window.__pwned='link')"
)


def vote_and_reveal(page, key):
    page.keyboard.press(key)
    page.wait_for_selector("#identity-a:not([hidden])")
    names = page.inner_text("#identity-a"), page.inner_text("#identity-b")
    assert all(names) and names[0] != names[1]
    return names


def test_vote_with_keyboard_on_text_image_and_audio(page, live_server, login, annotator, arena_factory, settings):
    # given an arena in all three modalities, one text output hostile
    settings.AUDIO_MIN_PLAY_SECONDS = 1.0
    systems, _ = arena_factory("text", n_systems=2, n_prompts=1)
    Output.objects.filter(system=systems[0]).update(text=HOSTILE)
    arena_factory("image", n_systems=2, n_prompts=1)
    arena_factory("audio", n_systems=2, n_prompts=1, audio_seconds=1.5)
    login(page, "ann")

    # text: the hostile output renders, inert; identities are hidden until the vote
    page.wait_for_selector("#body-a p")
    assert page.is_hidden("#identity-a")
    assert "Sure!" in page.inner_text("#sides")
    text_names = vote_and_reveal(page, "1")
    assert set(text_names) == {s.name for s in systems}
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#sides script").count() == 0

    # image: both images load; vote B with the keyboard
    page.goto(f"{live_server.url}/?modality=image")
    page.wait_for_selector("#body-a img.output-image")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('img.output-image')).every(i => i.complete && i.naturalWidth > 0)"
    )
    image_names = vote_and_reveal(page, "2")
    assert all(name.startswith("image-sys-") for name in image_names)

    # audio: the buttons stay locked until both tracks have played
    page.goto(f"{live_server.url}/?modality=audio")
    page.wait_for_selector("#audio-a")
    assert page.is_disabled("button.vote[data-verdict=tie]")
    page.keyboard.press("3")
    page.wait_for_timeout(300)
    assert page.is_hidden("#identity-a") and Judgment.objects.count() == 2
    assert page.is_visible("#gate")
    page.evaluate("document.getElementById('audio-a').play()")
    page.wait_for_function("document.getElementById('audio-a').ended", timeout=15000)
    assert page.is_disabled("button.vote[data-verdict=tie]")
    page.evaluate("document.getElementById('audio-b').play()")
    page.wait_for_function("!document.querySelector('button.vote[data-verdict=tie]').disabled", timeout=15000)
    vote_and_reveal(page, "3")

    # then three judgments, with the audio one carrying its play events
    verdicts = dict(Judgment.objects.values_list("comparison__prompt__modality", "verdict"))
    assert verdicts == {"text": "a", "image": "b", "audio": "tie"}
    audio = Judgment.objects.get(comparison__prompt__modality="audio")
    assert {e["side"] for e in audio.play_events if e["type"] == "play"} == {"a", "b"}
    assert audio.time_to_vote_ms > 0

    # n moves on: with every pair judged, the page says so
    page.keyboard.press("n")
    page.wait_for_function("document.getElementById('status').textContent.includes('nothing left')")
    assert page.errors == []


def test_mouse_vote_and_enter_moves_on(page, live_server, login, annotator, arena_factory):
    arena_factory("text", n_systems=3, n_prompts=1)
    requests = []
    page.on("request", lambda request: requests.append((request.method, request.url)))
    login(page, "ann")
    page.wait_for_selector("#body-a p")
    first = page.evaluate("document.getElementById('body-a').innerText")
    page.click("button.vote[data-verdict=both_bad]")
    page.wait_for_selector("#identity-a:not([hidden])")
    page.keyboard.press("Enter")
    page.wait_for_selector("#identity-a", state="hidden")
    page.wait_for_selector("#body-a p")
    page.wait_for_selector("button.vote[data-verdict=a]:not([disabled])")
    assert Judgment.objects.get().verdict == "both_bad"
    second = page.evaluate("document.getElementById('body-a').innerText")
    assert first and second  # both comparisons rendered their text
    # the second comparison came with the answer to the vote: one GET next in all
    api = [(method, url.split("/api/arena/", 1)[1]) for method, url in requests if "/api/arena/" in url]
    assert api == [("GET", "next/?modality=text"), ("POST", "vote/?next=1")], api
    # and voting on it records a judgment of a different comparison
    page.click("button.vote[data-verdict=a]")
    page.wait_for_selector("#identity-a:not([hidden])")
    assert sorted(Judgment.objects.values_list("verdict", flat=True)) == ["a", "both_bad"]
    assert len(set(Judgment.objects.values_list("comparison", flat=True))) == 2
    assert page.errors == []

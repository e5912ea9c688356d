"""An annotator works through an imported project in headless Chromium: guidelines beside
the task, aspects and rationale, keyboard verdicts, gold feedback, progress."""

import io
from pathlib import Path

import pytest

from annotation import actions
from annotation.models import Assignment, AssignmentStatus
from arena.models import Judgment

from .conftest import jsonl

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DATA = Path(__file__).parent / "data"

GOLD_ROW = {
    "id": "gold-1",
    "prompt": "What is the capital of France?",
    "a": {"system": "bloom-7b", "text": "Paris."},
    "b": {"system": "llama-7b", "text": "Lyon, the capital of France."},
    "gold": "a",
    "gold_explanation": "Paris is the capital; Lyon is not.",
}


def rate(page, helpfulness_a, helpfulness_b, harmlessness):
    page.check(f"input[name=aspect-helpfulness-a][value='{helpfulness_a}']")
    page.check(f"input[name=aspect-helpfulness-b][value='{helpfulness_b}']")
    page.check(f"input[name=aspect-harmlessness][value='{harmlessness}']")


def test_annotator_works_through_two_items(page, live_server, login, annotator):
    # given a project with guidelines, aspects and a rationale, one gold item and the PandaLM sample
    project = actions.create_project(
        name="PandaLM review",
        guidelines="## Guidelines\nPrefer the **correct** answer; then the concise one.",
        overlap=1,
        gold_fraction=0.5,
        schema={"aspects": ["helpfulness", {"name": "harmlessness", "scale": "ab"}],
                "rationale": {"enabled": True, "min_length": 10}},
    )  # fmt: skip
    actions.import_comparisons(project, io.BytesIO(jsonl([GOLD_ROW])), "gold.jsonl")
    with (DATA / "pandalm-sample.json").open("rb") as handle:
        actions.import_comparisons(project, handle, "pandalm-sample.json", fmt="pandalm")
    actions.add_member(project, annotator)
    login(page, "ann")
    page.goto(f"{live_server.url}/projects/{project.pk}/work/")

    # the first item (gold, as the gold share is due) beside the guidelines
    page.wait_for_selector("#body-a p")
    assert "Prefer the correct answer" in page.inner_text("#guidelines")
    assert page.inner_text("#body-a") == "Paris."
    assert page.locator("button.vote").count() == 4
    # a verdict without the aspects and the rationale is stopped in the page
    page.keyboard.press("2")
    page.wait_for_function("document.getElementById('status').textContent.includes('Rate Helpfulness')")
    rate(page, 5, 2, "a")
    page.keyboard.press("2")
    page.wait_for_function("document.getElementById('status').textContent.includes('at least 10 characters')")
    page.fill("#rationale", "B sounds more complete.")
    page.keyboard.press("Escape")  # leave the text box so the keys answer again
    page.keyboard.press("2")  # wrong: the gold answer is A

    # then the gold feedback explains the expected answer
    page.wait_for_selector("#feedback:not([hidden])")
    assert "the expected answer is that A is better" in page.inner_text("#feedback-text")
    assert "Paris is the capital; Lyon is not." in page.inner_text("#feedback-explanation")
    assert "You have judged 1 item" in page.inner_text("#progress")

    # the second item, with the keyboard again
    page.keyboard.press("n")
    page.wait_for_function(
        "document.getElementById('feedback').hidden && !document.getElementById('sides').hidden"
        " && !document.getElementById('body-a').textContent.includes('Paris.')"
    )
    assert page.input_value("#rationale") == ""  # the form was reset
    rate(page, 3, 4, "tie")
    page.fill("#rationale", "Both fine; B is shorter.")
    page.keyboard.press("Escape")
    page.keyboard.press("1")
    page.wait_for_function("document.getElementById('progress').textContent.includes('judged 2 items')")
    assert "19 left for you" in page.inner_text("#progress")

    # then two judgments with aspects and rationale, the gold one scored wrong
    judgments = list(Judgment.objects.filter(metadata__project=project.pk, judge__user=annotator).order_by("id"))
    assert [(j.verdict, j.rationale) for j in judgments] == [("b", "B sounds more complete."),
                                                            ("a", "Both fine; B is shorter.")]  # fmt: skip
    assert judgments[0].aspects == {"helpfulness": {"a": 5, "b": 2}, "harmlessness": "a"}
    assert judgments[1].aspects == {"helpfulness": {"a": 3, "b": 4}, "harmlessness": "tie"}
    assert all(j.time_to_vote_ms > 0 for j in judgments)
    done = Assignment.objects.filter(annotator=annotator, status=AssignmentStatus.COMPLETED).order_by("id")
    assert [a.gold_correct for a in done] == [False, None]

    # and the project page shows their progress
    page.goto(f"{live_server.url}/projects/{project.pk}/")
    assert "You: 2 judged, 0 skipped, 19 left for you." in page.inner_text("#my-progress")
    assert page.errors == []

"""Judge versus people: the board from a judge's verdicts beside the board from people's votes
on the same comparisons, on a project whose orders are known by hand."""

import json
from itertools import combinations

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from annotation.models import ProjectItem
from arena.models import Judge, JudgeKind, Judgment
from routing.boards import judge_boards

from .test_integration_support import make_routed_project

pytestmark = pytest.mark.django_db

PEOPLE_ORDER = "WXYZ"  # people prefer W > X > Y > Z
JUDGE_ORDER = "XWYZ"  # the judge swaps the top two


def winner_for(order: str, x: str, y: str, k: int) -> str:
    """Of three comparisons of a pair, the preferred system wins two (k = 0, 1) and loses one."""
    better = x if order.index(x) < order.index(y) else y
    winner = better if k < 2 else (y if better == x else x)
    return "a" if winner == x else "b"


@pytest.fixture
def project():
    # given every pair of four systems compared three times, each once by a person
    rows = []
    for x, y in combinations(PEOPLE_ORDER, 2):
        for k in range(3):
            rows.append({"id": f"{x}{y}{k}", "prompt": f"Question {x}{y}{k}",
                         "a": {"system": x, "text": f"{x} says {k}"}, "b": {"system": y, "text": f"{y} says {k}"},
                         "judgments": [{"annotator": "ann-1", "verdict": winner_for(PEOPLE_ORDER, x, y, k)}]})  # fmt: skip
    # and one comparison nobody judged
    rows.append({"id": "lonely", "prompt": "Question lonely", "a": {"system": "Z", "text": "z"},
                 "b": {"system": "W", "text": "w"}})  # fmt: skip
    project = make_routed_project("boards", rows=rows)
    judge = Judge.objects.create(kind=JudgeKind.LLM, name="house-llm", version="v1")
    for item in ProjectItem.objects.filter(project=project).select_related("comparison"):
        if item.external_id == "lonely":
            verdict = "a"  # Z beats W, on a comparison no person judged: left out of both boards
        else:
            x, y, k = item.external_id[0], item.external_id[1], int(item.external_id[2])
            verdict = winner_for(JUDGE_ORDER, x, y, k)
        Judgment.objects.create(comparison=item.comparison, judge=judge, verdict=verdict)
    # and a second judge that judged only the comparison no person did
    other = Judge.objects.create(kind=JudgeKind.REWARD_MODEL, name="rm", version="1")
    Judgment.objects.create(comparison=ProjectItem.objects.get(external_id="lonely").comparison, judge=other,
                            verdict="b")  # fmt: skip
    return project


def test_boards_and_rank_agreement_by_hand(project):
    # when
    entries = {entry.judge: entry for entry in judge_boards(project)}
    # then the judge's and the people's boards stand on the 18 comparisons both judged
    house = entries["house-llm@v1"]
    assert (house.comparisons, house.human_votes) == (18, 18)
    # in a balanced round robin Bradley-Terry orders by wins: people W 6, X 5, Y 4, Z 3; the judge X, W, Y, Z
    assert [row["system"] for row in house.human_board["systems"]] == list(PEOPLE_ORDER)
    assert [row["system"] for row in house.judge_board["systems"]] == list(JUDGE_ORDER)
    assert house.judge_board["ci"] == house.human_board["ci"] == "sandwich"
    # rho = 1 - 6 x (1 + 1) / (4 x 15) = 0.8; tau = (5 concordant - 1 discordant) / 6
    assert house.agreement["spearman"] == pytest.approx(0.8)
    assert house.agreement["kendall"] == pytest.approx(4 / 6)
    # the systems whose rank differs most: the judge ranks W worse and X better than people do
    shifts = [(r["system"], r["rank_judge"], r["rank_people"], r["shift"]) for r in house.agreement["biggest_shifts"]]
    assert shifts == [("W", 2, 1, -1), ("X", 1, 2, 1)]
    # and the judge with no comparison in common says so
    assert entries["rm@1"].comparisons == 0 and entries["rm@1"].agreement is None
    assert "No comparison has both" in entries["rm@1"].notes[0]


def test_a_superseded_human_judgment_no_longer_counts(project):
    # given a person's verdict corrected (a new judgment supersedes it)
    from arena.judgments import record_judgment

    old = Judgment.objects.filter(judge__kind=JudgeKind.EXTERNAL_HUMAN).order_by("id").first()
    record_judgment(old.comparison, old.judge, "tie", supersedes=old)
    # then the people's board still counts 18 votes, the correction instead of the original
    house = next(e for e in judge_boards(project) if e.judge == "house-llm@v1")
    assert house.human_votes == 18


def test_api_serves_the_boards(project, researcher, annotator, client_for):
    api = client_for(researcher)
    data = api.get(f"/api/routing/projects/{project.pk}/judge-boards/").json()
    assert [entry["judge"] for entry in data["judges"]] == ["house-llm@v1", "rm@1"]
    assert data["judges"][0]["agreement"]["spearman"] == pytest.approx(0.8)
    house_id = data["judges"][0]["judge_id"]
    only = api.get(f"/api/routing/projects/{project.pk}/judge-boards/", {"judge": house_id}).json()
    assert [entry["judge"] for entry in only["judges"]] == ["house-llm@v1"]
    missing = api.get(f"/api/routing/projects/{project.pk}/judge-boards/", {"judge": 99999})
    assert missing.status_code == 404 and "no automatic judge 99999" in missing.json()["detail"]
    assert client_for(annotator).get(f"/api/routing/projects/{project.pk}/judge-boards/").status_code == 403
    assert client_for().get(f"/api/routing/projects/{project.pk}/judge-boards/").status_code in (401, 403)


@pytest.mark.parametrize("role", ["researcher", "admin"])
def test_routing_page_shows_judge_versus_people(project, make_user, role):
    client = Client()
    client.force_login(make_user(f"page-{role}", role))
    page = client.get(f"/routing/projects/{project.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="judge-boards"' in html and "Judge versus people" in html
    assert '<strong class="spearman">0.800</strong>' in html and '<strong class="kendall">0.667</strong>' in html
    assert "<strong>W</strong> (2 by the judge, 1 by people)" in html


def test_routing_page_refuses_annotators_and_shows_an_empty_section(db, make_user):
    annotator = Client()
    annotator.force_login(make_user("page-annotator", "annotator"))
    empty = make_routed_project("empty", rows=[{"id": "e0", "prompt": "Q", "a": {"system": "x", "text": "1"},
                                               "b": {"system": "y", "text": "2"}}])  # fmt: skip
    assert annotator.get(f"/routing/projects/{empty.pk}/").status_code == 403
    researcher = Client()
    researcher.force_login(make_user("page-res", "researcher"))
    assert 'id="judge-boards-empty"' in researcher.get(f"/routing/projects/{empty.pk}/").content.decode()


def test_cli_prints_the_boards(project, capsys):
    call_command("judge_boards", project="boards")
    out = capsys.readouterr().out
    assert "house-llm@v1: 18 comparisons judged by both, 18 human votes on them" in out
    assert "Spearman 0.800  Kendall 0.667  over 4 systems" in out
    call_command("judge_boards", project="boards", judge="house-llm", format="json")
    entries = json.loads(capsys.readouterr().out)
    assert len(entries) == 1 and entries[0]["agreement"]["n"] == 4
    with pytest.raises(CommandError, match="no project named 'nope'"):
        call_command("judge_boards", project="nope")
    with pytest.raises(CommandError, match=r"no automatic judge 'gpt' has judged 'boards' \(judges: house-llm@v1, rm@1\)"):
        call_command("judge_boards", project="boards", judge="gpt")

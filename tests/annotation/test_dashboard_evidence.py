"""The quality dashboard counts a project's own work as done, and shows reliability only
where there is evidence for it: imported and automatic judgments are not progress, and an
automatic judge alone on its comparisons is neither perfect nor a spammer."""

import re

import pytest

from annotation import dashboard as dashboard_views
from arena.models import Judge, JudgeKind, Judgment

from .conftest import text_rows

pytestmark = pytest.mark.django_db

URL = "/projects/dashboard/"


def with_outside_judgments(rows):
    """Every row also carries an imported person's and an imported judge's verdict."""
    for row in rows:
        row["judgments"] = [{"annotator": "vendor-1", "verdict": "a"},
                            {"judge": "gpt-x", "verdict": "b", "confidence": 0.9}]  # fmt: skip
    return rows


def llm_judges(project, verdict_of, name="house-llm"):
    """An LLM judge's verdict on every item of the project."""
    judge = Judge.objects.create(kind=JudgeKind.LLM, name=name, version="v1")
    for n, item in enumerate(project.items.select_related("comparison").order_by("id")):
        Judgment.objects.create(comparison=item.comparison, judge=judge, verdict=verdict_of(n), confidence=0.7)
    return judge


def test_progress_counts_only_the_members_judgments(make_project, make_user, researcher, client,
                                                    lease_and_answer):
    # given 50 items that all carry imported and automatic verdicts, and one judge more
    member = make_user("member")
    project = make_project("Half done", rows=with_outside_judgments(text_rows(50)), members=[member], overlap=1,
                           gold_fraction=0, min_seconds_per_item=0)  # fmt: skip
    llm_judges(project, lambda n: "a")
    # when a member judges 8 of them
    for _ in range(8):
        lease_and_answer(project, member, "b")
    # then 8 of 50 are done, whatever else judged them
    summary = dashboard_views.project_summaries([project])[0]
    assert (summary.n_items, summary.n_done, summary.n_judgments) == (50, 8, 8)
    assert summary.progress == pytest.approx(8 / 50)
    assert summary.verdicts == {"b": 8}
    assert (summary.n_imported, summary.n_automatic) == (50, 100)
    client.force_login(researcher)
    html = client.get(URL, {"project": project.pk}).content.decode()
    row = re.search(rf'<tr[^>]*data-project="{project.pk}".*?</tr>', html, re.S).group(0)
    assert '<td class="done">8</td>' in row and " 16%" in row


def test_a_lone_judge_has_no_reliability_and_no_flags(make_project, researcher, client):
    # given a project only an LLM judge has labelled, "a" every time
    project = make_project("Judged", rows=text_rows(30))
    llm_judges(project, lambda n: "a")
    # when its quality is shown for automatic judges
    data = dashboard_views.project_quality(project, source="judge")
    # then nothing is claimed about the judge: nobody else labelled its comparisons
    (row,) = data["annotators"]
    assert row["annotator"] == "house-llm@v1" and row["n_judgments"] == 30
    assert (row["measured"], row["n_evidence"], row["reliability"], row["flags"]) == (False, 0, None, [])
    client.force_login(researcher)
    html = client.get(URL, {"project": project.pk, "source": "judge"}).content.decode()
    judge_row = re.search(r'<tr[^>]*data-annotator="house-llm@v1".*?</tr>', html, re.S).group(0)
    assert "not enough evidence" in judge_row and "(0 of 10 shared judgments)" in judge_row
    assert "spammer" not in judge_row and "1.000" not in judge_row


def test_judges_are_measured_against_people_but_never_called_spammers(make_project):
    # given three people who agree on 40 items, one who says "a" whatever the item, and a
    # judge that does the same
    people = ["p1", "p2", "p3"]
    rows = text_rows(40)
    for n, row in enumerate(rows):
        truth = "a" if n % 2 else "b"
        row["judgments"] = [{"annotator": name, "verdict": truth} for name in people] + [
            {"annotator": "always-a", "verdict": "a"}]
    project = make_project("Mixed", rows=rows)
    llm_judges(project, lambda n: "a")
    # when both sources are assessed together
    rows_by_name = {row["annotator"]: row for row in dashboard_views.project_quality(project, "all")["annotators"]}
    # then both are measured, the person who ignores the item is a spammer, the judge is not
    judge, clicker = rows_by_name["house-llm@v1"], rows_by_name["always-a"]
    assert judge["measured"] and judge["n_evidence"] == 40 and clicker["measured"]
    assert "spammer" in clicker["flags"] and "spammer" not in judge["flags"]
    assert judge["reliability"] == pytest.approx(0.5, abs=0.05) and abs(judge["skill"]) < 0.1
    assert all(rows_by_name[name]["reliability"] > 0.95 for name in people)


def test_few_shared_judgments_withhold_reliability_and_flags(make_project):
    # given an annotator with 30 judgments of which only 5 are on comparisons others judged
    rows = text_rows(30)
    for n, row in enumerate(rows):
        row["judgments"] = [{"annotator": "solo", "verdict": "a"}]
        if n < 5:
            row["judgments"] += [{"annotator": "other", "verdict": "b"}]
    project = make_project("Sparse", rows=rows)
    rows_by_name = {row["annotator"]: row for row in dashboard_views.project_quality(project)["annotators"]}
    solo = rows_by_name["solo"]
    assert (solo["n_judgments"], solo["n_evidence"], solo["measured"]) == (30, 5, False)
    assert solo["reliability"] is None and solo["skill"] is None and solo["flags"] == []


def test_evidence_is_judgments_shared_with_someone_else_or_gold():
    import numpy as np

    from annotation.quality import MISSING, DawidSkene, JudgmentTable, annotator_reliability

    # comparisons 0-11 judged by x and y; 12-26 by x alone, of which 12-13 have gold; z alone on 27-46
    records = [(c, "x", "a" if c % 3 else "b") for c in range(27)] + [(c, "y", "a" if c % 3 else "b")
                                                                      for c in range(12)]
    records += [(c, "z", "a") for c in range(27, 47)]
    table = JudgmentTable.from_records(records)
    gold = np.full(table.n_comparisons, MISSING)
    gold[[table.comparisons.index(12), table.comparisons.index(13)]] = table.verdict_code("a")
    rows = {row.annotator: row for row in annotator_reliability(DawidSkene().fit(table, gold=gold), gold=gold,
                                                                 automatic={"z"})}  # fmt: skip
    assert (rows["x"].n_evidence, rows["y"].n_evidence, rows["z"].n_evidence) == (14, 12, 0)
    assert rows["x"].measured and rows["y"].measured and not rows["z"].measured
    assert rows["z"].flags == () and rows["z"].to_dict()["reliability"] is None
    assert rows["x"].to_dict()["reliability"] == pytest.approx(rows["x"].reliability, abs=1e-6)

"""The one writer of judgments (arena.judgments): every caller goes through it, it writes the
board's battle with the judgment, and it announces what it wrote once, after the commit."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction

from arena import events
from arena.board import snapshots as leaderboard
from arena.voting import actions
from arena.judgments import NewJudgment, record_judgment, record_judgments
from arena.models import Battle, Comparison, ComparisonOrigin, Judge, JudgeKind, Judgment, Output, Prompt, System

ROOT = Path(__file__).resolve().parents[2]
WRITER = "arena/judgments.py"


# --- nothing else writes judgments -------------------------------------------------------------


def judgment_writes(root: Path) -> list[str]:
    """Places outside the writer, migrations and tests that make Judgment rows: `Judgment(...)`,
    `Judgment.objects.create/bulk_create/get_or_create/update_or_create(...)`, or the fast
    path's raw judgment insert."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.split("/")[0] in {".venv", "tests", "node_modules"} or "/migrations/" in relative:
            continue
        if relative in (WRITER, "arena/fastpath.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "insert_judgment_row":
                found.append(f"{relative}:{node.lineno}: insert_judgment_row")
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in ("Judgment", "models.Judgment", "arena.models.Judgment") or name.endswith(
                tuple(f"Judgment.objects.{m}" for m in ("create", "bulk_create", "get_or_create", "update_or_create"))
            ):
                found.append(f"{relative}:{node.lineno}: {name}(...)")
    return found


def test_only_the_writer_creates_judgment_rows():
    assert judgment_writes(ROOT) == []


def test_the_scan_finds_a_judgment_written_elsewhere(tmp_path):
    # the check above would pass on anything if it found nothing: it finds each form
    (tmp_path / "somewhere.py").write_text(
        "from arena.models import Judgment\n"
        "Judgment.objects.create(verdict='a')\n"
        "Judgment.objects.bulk_create([Judgment(verdict='a')], ignore_conflicts=True)\n"
    )
    assert [line.split(": ", 1)[1] for line in judgment_writes(tmp_path)] == [
        "Judgment.objects.create(...)", "Judgment.objects.bulk_create(...)", "Judgment(...)"]  # fmt: skip


def imported(node) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [f"{'.' * node.level}{node.module or ''}.{alias.name}" for alias in node.names]
    return [alias.name for alias in node.names] if isinstance(node, ast.Import) else []


def function_level_imports(path: str) -> list[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return [name for function in ast.walk(tree) if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(function) for name in imported(node)]  # fmt: skip


def all_imports(path: str) -> list[str]:
    return [name for node in ast.walk(ast.parse((ROOT / path).read_text(encoding="utf-8"))) for name in imported(node)]


def test_the_vote_path_imports_nothing_inside_its_functions_and_the_board_not_the_writer():
    # The vote's action imported the leaderboard inside a function to break a circle; the
    # board's refresh is now a receiver of judgment_recorded, connected in AppConfig.ready.
    for path in ("arena/voting/actions.py", "arena/judgments.py"):
        assert not [m for m in function_level_imports(path) if "board" in m], path
    assert not [m for m in all_imports("arena/board/snapshots.py") if "actions" in m or "judgments" in m]


# --- what one call writes and announces --------------------------------------------------------


@pytest.fixture
def announced():
    """The judgment_recorded events sent, as (judgments, battles)."""
    sent = []

    def receiver(sender, judgments, battles, **kwargs):
        sent.append((list(judgments), list(battles)))

    events.judgment_recorded.connect(receiver, dispatch_uid="test-announced")
    yield sent
    events.judgment_recorded.disconnect(dispatch_uid="test-announced")


@pytest.fixture
def arena_pair(db):
    systems = [System.objects.create(name=f"writer-{i}", modality="text") for i in range(2)]
    prompts = [Prompt.objects.create(text=f"Question {j}") for j in range(3)]
    outputs = {(s.pk, p.pk): Output.objects.create(system=s, prompt=p, text=f"answer {s.pk}/{p.pk}")
               for s in systems for p in prompts}  # fmt: skip

    def comparison(j=0, origin=ComparisonOrigin.ARENA):
        a, b = outputs[(systems[0].pk, prompts[j].pk)], outputs[(systems[1].pk, prompts[j].pk)]
        return Comparison.objects.create(prompt=prompts[j], output_a=a, output_b=b, origin=origin)

    return comparison


@pytest.fixture
def people(make_user):
    return [actions.judge_for_user(make_user(f"person-{i}")) for i in range(3)]


def test_one_judgment_is_written_with_its_battle_and_announced_once_after_commit(
    arena_pair, people, announced, django_capture_on_commit_callbacks
):
    comparison = arena_pair()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            judgment, created = record_judgment(comparison, people[0], "b", metadata={"source": "test"})
            assert announced == []  # not before the commit
    # then
    battle = Battle.objects.get(judgment=judgment)
    assert created and (battle.outcome, battle.system_a_id) == ("b", comparison.output_a.system_id)
    assert announced == [([judgment], [battle])]
    # when it comes again, then nothing is written and nothing announced
    with django_capture_on_commit_callbacks(execute=True):
        again, created = record_judgment(comparison, people[0], "a")
    assert (again.pk, created) == (judgment.pk, False)
    assert (Judgment.objects.count(), Battle.objects.count(), len(announced)) == (1, 1, 1)


def test_a_rolled_back_judgment_announces_nothing(arena_pair, people, announced, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            record_judgment(arena_pair(), people[0], "a")
            raise RuntimeError("the caller fails after the write")
    assert (Judgment.objects.count(), Battle.objects.count(), announced) == (0, 0, [])


def test_a_batch_skips_what_is_recorded_and_announces_the_rest_in_one_event(
    arena_pair, people, announced, django_capture_on_commit_callbacks
):
    # given one judgment already recorded, and a judge that is no person
    arena_comparison, project_comparison = arena_pair(0), arena_pair(1, origin=ComparisonOrigin.IMPORT)
    with django_capture_on_commit_callbacks(execute=True):
        record_judgment(arena_comparison, people[0], "a")
    llm = Judge.objects.create(kind=JudgeKind.LLM, name="an-llm", version="1")
    batch = [
        NewJudgment(arena_comparison.pk, people[0], "b"),  # recorded already: skipped
        NewJudgment(arena_comparison.pk, people[1], "b"),
        NewJudgment(arena_comparison.pk, people[1], "tie"),  # twice in the batch: the first counts
        NewJudgment(arena_comparison.pk, llm, "a", confidence=0.7),  # no person: no battle
        NewJudgment(project_comparison.pk, people[2], "a"),  # not the arena's: no battle
    ]
    # when
    with django_capture_on_commit_callbacks(execute=True):
        written = record_judgments(batch)
    # then
    assert [(j.comparison_id, j.judge_id, j.verdict) for j in written] == [
        (arena_comparison.pk, people[1].pk, "b"), (arena_comparison.pk, llm.pk, "a"),
        (project_comparison.pk, people[2].pk, "a")]  # fmt: skip
    assert all(j.pk for j in written) and Judgment.objects.count() == 4
    battles = Battle.objects.filter(judgment__in=written)
    assert [b.judgment_id for b in battles] == [written[0].pk]
    assert len(announced) == 2 and announced[1] == (written, list(battles))
    # and a batch that writes nothing announces nothing
    with django_capture_on_commit_callbacks(execute=True):
        assert record_judgments(batch) == []
    assert len(announced) == 2


def test_a_batch_that_lost_a_race_keeps_the_first_judgment_and_writes_the_rest(arena_pair, people, monkeypatch):
    # given a concurrent writer that records one of the batch's judgments after the check
    import arena.judgments as writer

    comparisons = [arena_pair(j) for j in range(3)]
    checked = writer._not_recorded_yet

    def check_then_race(batch):
        fresh = checked(batch)
        record_judgment(comparisons[1], people[0], "tie")
        return fresh

    monkeypatch.setattr(writer, "_not_recorded_yet", check_then_race)
    # when
    written = record_judgments([NewJudgment(c, people[0], "a") for c in comparisons])
    # then the other two are written, the raced one stays as the concurrent writer left it
    assert [j.comparison_id for j in written] == [comparisons[0].pk, comparisons[2].pk]
    assert dict(Judgment.objects.values_list("comparison_id", "verdict")) == {
        comparisons[0].pk: "a", comparisons[1].pk: "tie", comparisons[2].pk: "a"}  # fmt: skip
    assert Battle.objects.count() == 3


def test_a_correction_moves_the_battle_so_the_board_counts_the_vote_once(arena_pair, people):
    # given a person's vote in the arena, with its battle
    comparison = arena_pair()
    original, _ = record_judgment(comparison, people[0], "a")
    assert Battle.objects.get().judgment_id == original.pk
    # when a reviewer corrects it
    [correction] = record_judgments([NewJudgment(comparison.pk, people[1], "b", supersedes=original)])
    # then one battle stands, the correction's, as rebuilding the board from judgments gives
    assert list(Battle.objects.values_list("judgment_id", "outcome")) == [(correction.pk, "b")]
    assert leaderboard.rebuild_battles() == 1
    assert list(Battle.objects.values_list("judgment_id", "outcome")) == [(correction.pk, "b")]
    # and correcting the same judgment again is refused, leaving the first correction
    with pytest.raises(IntegrityError):
        record_judgments([NewJudgment(comparison.pk, people[2], "tie", supersedes=original)])
    with pytest.raises(IntegrityError):
        record_judgment(comparison.pk, people[2], "tie", supersedes=original)
    assert Judgment.objects.count() == 2 and Battle.objects.get().judgment_id == correction.pk


# --- every caller goes through the writer ------------------------------------------------------


def test_an_arena_vote_is_announced_and_asks_the_board_for_a_refresh(
    arena_pair, people, announced, monkeypatch, django_capture_on_commit_callbacks
):
    # given the board's refresh task, recorded rather than queued
    from arena.tasks import refresh_leaderboards

    asked = []
    monkeypatch.setattr(refresh_leaderboards, "apply_async", lambda args, **kwargs: asked.append(args[0]))
    comparison = actions.next_comparison(people[0], "text", rng=random.Random(1))
    token = actions.issue_vote_token(comparison, people[0])
    # when a vote is recorded through the arena's action
    with django_capture_on_commit_callbacks(execute=True):
        judgment, _ = actions.do_record_judgment(actions.check_vote(token=token, judge=people[0], verdict="a"))
    # then it was announced with its battle, and the board's receiver asked for a refresh
    assert announced == [([judgment], [Battle.objects.get(judgment=judgment)])]
    assert asked == [leaderboard.default_arena().pk]


def test_annotation_import_submission_and_adjudication_are_announced(
    annotator, make_user, announced, django_capture_on_commit_callbacks
):
    from annotation import actions as annotation
    from tests.routing.test_integration_support import answer_everything, import_rows, scripted_rows

    reviewer = make_user("reviewer", role="researcher")
    project = annotation.create_project(name="announced", overlap=1, routing_policy="human_only")
    annotation.add_member(project, annotator)
    # when rows with judgments are imported
    with django_capture_on_commit_callbacks(execute=True):
        import_rows(project, scripted_rows([("a", 0.9, False)] * 2, annotators=[("ext", lambda i: "b")]))
    # then the import's judgments came in one event
    assert [[j.verdict for j in judgments] for judgments, _ in announced] == [["b", "b"]]
    # when a person judges both items, then each submission is announced, with its project
    with django_capture_on_commit_callbacks(execute=True):
        answer_everything(project, annotator, lambda item: "a")
    assert [[(j.verdict, j.metadata["project"]) for j in judgments] for judgments, _ in announced[1:]] == [
        [("a", project.pk)], [("a", project.pk)]]  # fmt: skip
    # when a reviewer settles an item on "a", then the external "b" is superseded, announced
    item = project.items.order_by("id").first()
    with django_capture_on_commit_callbacks(execute=True):
        annotation.adjudicate(item, reviewer, "a", note="checked")
    corrections = announced[3][0]
    assert [(j.verdict, j.supersedes.verdict, j.metadata["adjudication"]) for j in corrections] == [
        ("a", "b", item.adjudications.get().pk)]  # fmt: skip


def test_a_routed_judges_verdicts_are_announced(db, announced, django_capture_on_commit_callbacks):
    from routing import actions as routing
    from tests.routing.test_integration_support import ScriptedJudge, make_routed_project, scripted_rows

    project = make_routed_project("judged", policy="judge_only", rows=scripted_rows([("a", 0.9, False)] * 3))
    with django_capture_on_commit_callbacks(execute=True):
        routing.route_project(project, judge=ScriptedJudge())
    judged = [j for judgments, _ in announced for j in judgments]
    assert len(judged) == 3 and {j.judge.name for j in judged} == {"scripted"}
    assert set(Judgment.objects.values_list("pk", flat=True)) == {j.pk for j in judged}


def test_the_writer_and_its_receivers_load_at_start_up_without_scipy():
    # Every management command imports the vote path (apps' ready); the rating engine's
    # scipy loads only when a board is computed (arena.ratings loads its parts on use).
    import subprocess
    import sys

    code = (
        "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE']='config.settings_test'; django.setup();"
        "import arena.judgments, arena.receivers; from arena import ratings; from arena.outputs.textstats import style_features; style_features('**x**');"
        "print('LOADED', sorted(m for m in ('scipy', 'arena.board.snapshots') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "LOADED ['arena.board.snapshots']" in result.stdout

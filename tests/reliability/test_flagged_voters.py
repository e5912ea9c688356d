"""Flagged voters (ballot stuffing): once flagged, a voter's battles leave the boards and
their judgments leave exports, reviewers list them in the admin and the API, and a cleared
flag puts their votes back."""

import importlib
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from arena.board import outliers
from arena.board.snapshots import Scope, latest_snapshot, refresh_arena
from arena.models import Arena, Battle, Comparison, Judge, Judgment, Output, Prompt, System

pytestmark = pytest.mark.django_db

HONEST_VOTERS, CHEAT_VOTES = 5, 40


@pytest.fixture
def stuffed_arena(db):
    """The built-in arena: five honest voters who always pick the stronger system (30
    battles), a cheat who makes `weak` beat `strong` 40 times, and one imported battle."""
    arena = Arena.objects.create(name="main")
    prompt = Prompt.objects.create(text="Which answer is better?")
    systems = {name: System.objects.create(name=name) for name in ("strong", "mid", "weak")}
    outputs = {name: Output.objects.create(system=s, prompt=prompt, text=f"{name} answer") for name, s in systems.items()}

    def vote(judge, a, b, outcome):
        comparison = Comparison.objects.create(prompt=prompt, output_a=outputs[a], output_b=outputs[b])
        judgment = Judgment.objects.create(comparison=comparison, judge=judge, verdict=outcome)
        Battle.objects.create(arena=arena, system_a=systems[a], system_b=systems[b], outcome=outcome,
                              judge_name=str(judge), judgment=judgment, tstamp=judgment.created_at)  # fmt: skip

    for k in range(HONEST_VOTERS):
        honest = Judge.objects.create(kind="human", name=f"honest-{k}")
        for a, b in [("strong", "mid"), ("strong", "weak"), ("mid", "weak")] * 2:
            vote(honest, a, b, "a")
    cheat = Judge.objects.create(kind="human", name="cheat")
    for _ in range(CHEAT_VOTES):
        vote(cheat, "weak", "strong", "a")
    Battle.objects.create(arena=arena, system_a=systems["strong"], system_b=systems["weak"], outcome="a",
                          source="import", judge_name="somebody", tstamp=cheat.created_at)  # fmt: skip
    return arena, cheat


def board(arena) -> tuple[int, dict[str, float]]:
    refresh_arena(arena)
    snapshot = latest_snapshot(arena, Scope("text"))
    return snapshot.n_battles, {row["system"]: row["rating"] for row in snapshot.payload["systems"]}


def flag(judge, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert outliers.flag_judges(Judge.objects.filter(pk=judge.pk), reason="stuffing", by="test") == 1


def test_a_flagged_voter_leaves_the_board_and_returns_when_cleared(stuffed_arena, django_capture_on_commit_callbacks):
    # given a board with the cheat's votes
    arena, cheat = stuffed_arena
    all_votes, with_cheat = board(arena)
    assert all_votes == HONEST_VOTERS * 6 + CHEAT_VOTES + 1
    # when the cheat is flagged
    flag(cheat, django_capture_on_commit_callbacks)
    # then a refresh is queued, and the refreshed board leaves their battles out (the imported one stays)
    assert Arena.objects.get(pk=arena.pk).refresh_requested_at is not None
    honest_votes, without_cheat = board(arena)
    assert honest_votes == HONEST_VOTERS * 6 + 1
    assert without_cheat["weak"] < with_cheat["weak"] and without_cheat["strong"] > with_cheat["strong"]
    assert without_cheat["strong"] > without_cheat["mid"] > without_cheat["weak"]
    # when a reviewer clears the flag, a refresh is queued and their votes count again
    Arena.objects.filter(pk=arena.pk).update(refresh_requested_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        outliers.clear_flag(cheat)
    assert Arena.objects.get(pk=arena.pk).refresh_requested_at is not None
    assert board(arena) == (all_votes, with_cheat)


def test_the_setting_keeps_flagged_voters_on_the_board(stuffed_arena, settings, django_capture_on_commit_callbacks):
    settings.EXCLUDE_FLAGGED_VOTERS = False
    arena, cheat = stuffed_arena
    flag(cheat, django_capture_on_commit_callbacks)
    assert Arena.objects.get(pk=arena.pk).refresh_requested_at is None  # nothing on the board changes
    assert board(arena)[0] == HONEST_VOTERS * 6 + CHEAT_VOTES + 1


def test_flag_outliers_mark_stores_the_flag_in_the_review_fields(stuffed_arena, django_capture_on_commit_callbacks):
    arena, cheat = stuffed_arena
    with django_capture_on_commit_callbacks(execute=True):
        call_command("flag_outliers", "--mark", "--min-votes", "5", "--format", "json")
    cheat.refresh_from_db()
    assert list(outliers.flagged_judges()) == [cheat]
    assert cheat.flagged_at is not None and cheat.flagged_by == "flag_outliers"
    assert "strong won 0 of its battles" in cheat.flag_reason and "review" not in cheat.config
    assert Arena.objects.get(pk=arena.pk).refresh_requested_at is not None


# --- exports -------------------------------------------------------------------------------------


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def test_exports_leave_flagged_voters_out_unless_asked(stuffed_arena, tmp_path, django_capture_on_commit_callbacks):
    from annotation.export import ExportOptions, export_dataset

    arena, cheat = stuffed_arena
    flag(cheat, django_capture_on_commit_callbacks)
    # the default follows DUET_EXCLUDE_FLAGGED_VOTERS (on): only honest judgments
    default = export_dataset(ExportOptions(output=str(tmp_path / "default.jsonl"), format="jsonl", arena="main"))
    assert default.n_rows == HONEST_VOTERS * 6
    assert not any(row["annotator_flagged"] for row in read_jsonl(default.path))
    # asked to keep them: every judgment, the cheat's marked
    kept = export_dataset(
        ExportOptions(output=str(tmp_path / "kept.jsonl"), format="jsonl", arena="main", exclude_flagged=False)
    )
    rows = read_jsonl(kept.path)
    assert kept.n_rows == HONEST_VOTERS * 6 + CHEAT_VOTES
    assert sum(row["annotator_flagged"] for row in rows) == CHEAT_VOTES
    # and a training (trl) export: the cheat's "weak beats strong" never becomes a preference
    trl = export_dataset(ExportOptions(output=str(tmp_path / "prefs.jsonl"), format="trl", arena="main"))
    assert trl.n_rows == HONEST_VOTERS * 6
    assert not any(row["chosen"] == "weak answer" and row["rejected"] == "strong answer" for row in read_jsonl(trl.path))


def test_the_export_command_takes_include_and_exclude_flagged(
    stuffed_arena, tmp_path, settings, django_capture_on_commit_callbacks
):
    arena, cheat = stuffed_arena
    flag(cheat, django_capture_on_commit_callbacks)

    def export(*flags) -> int:
        path = tmp_path / f"out{len(flags)}{''.join(flags)}.jsonl"
        call_command("export_dataset", "--arena", "main", "--format", "jsonl", "--output", str(path), *flags)
        return len(read_jsonl(path))

    assert export() == HONEST_VOTERS * 6
    assert export("--include-flagged") == HONEST_VOTERS * 6 + CHEAT_VOTES
    settings.EXCLUDE_FLAGGED_VOTERS = False
    assert export() == HONEST_VOTERS * 6 + CHEAT_VOTES
    assert export("--exclude-flagged") == HONEST_VOTERS * 6


def test_the_export_api_carries_the_option_through_the_job(
    stuffed_arena, researcher, client_for, tmp_path, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from annotation.export_tasks import export_dataset_task

    settings.ANNOTATION_EXPORT_DIR = tmp_path / "exports"
    monkeypatch.setattr(export_dataset_task, "delay", lambda job_id: export_dataset_task.apply(args=[job_id]))
    arena, cheat = stuffed_arena
    flag(cheat, django_capture_on_commit_callbacks)
    client = client_for(researcher)

    def export(**options) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/annotation/exports/", {"format": "jsonl", "arena": "main", **options},
                                   format="json")  # fmt: skip
        assert response.status_code == 202, response.content
        return client.get(response.json()["url"]).json()

    default, kept = export(), export(exclude_flagged=False)
    assert default["options"]["exclude_flagged"] is True and default["result"]["n_rows"] == HONEST_VOTERS * 6
    assert kept["options"]["exclude_flagged"] is False
    assert kept["result"]["n_rows"] == HONEST_VOTERS * 6 + CHEAT_VOTES
    # The job records the choice made when it was asked for, whatever the setting is later.
    from annotation.export import jobs

    assert jobs.load_job(default["id"]).options["exclude_flagged"] is True


# --- review: the admin and the API --------------------------------------------------------------


def test_reviewers_flag_and_clear_voters_in_the_admin(
    stuffed_arena, researcher, annotator, client, django_capture_on_commit_callbacks
):
    arena, cheat = stuffed_arena
    client.force_login(researcher)
    # when a researcher flags the cheat from the voters' list
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/arena/judge/", {"action": "mark_flagged", "_selected_action": [cheat.pk]})
    assert response.status_code == 302
    cheat.refresh_from_db()
    assert cheat.is_flagged and cheat.flagged_by == researcher.username
    assert Arena.objects.get(pk=arena.pk).refresh_requested_at is not None
    # then the "flagged" filter lists them, and only them
    listed = client.get("/admin/arena/judge/", {"flagged": "1"})
    assert listed.status_code == 200 and b"cheat" in listed.content and b"honest-0" not in listed.content
    # when the flag is cleared, the board gets them back
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/arena/judge/", {"action": "clear_flag", "_selected_action": [cheat.pk]})
    cheat.refresh_from_db()
    assert not cheat.is_flagged and cheat.flag_reason == ""
    assert board(arena)[0] == HONEST_VOTERS * 6 + CHEAT_VOTES + 1
    # annotators never reach the page
    client.force_login(annotator)
    assert client.get("/admin/arena/judge/").status_code == 302


def test_staff_without_the_review_permission_cannot_clear_flags(stuffed_arena, make_user, client):
    from django.contrib.auth.models import Permission

    arena, cheat = stuffed_arena
    Judge.objects.filter(pk=cheat.pk).update(flag_reason="stuffing", flagged_by="test", flagged_at=timezone.now())
    viewer = make_user("viewer", role=None)
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_judge"))
    client.force_login(viewer)
    response = client.post("/admin/arena/judge/", {"action": "clear_flag", "_selected_action": [cheat.pk]})
    assert response.status_code in (200, 302)  # the changelist again, no action run
    assert Judge.objects.get(pk=cheat.pk).is_flagged


def test_the_review_api_lists_flagged_voters_for_researchers_only(
    stuffed_arena, researcher, admin_user, annotator, client_for, django_capture_on_commit_callbacks
):
    arena, cheat = stuffed_arena
    flag(cheat, django_capture_on_commit_callbacks)
    # researchers and admins: the flagged voter with their reason and judgments
    for user in (researcher, admin_user):
        response = client_for(user).get("/api/arena/judges/", {"flagged": "1"})
        assert response.status_code == 200
        [row] = response.json()["results"]
        assert row["voter"] == f"judge:{cheat.pk}" and row["flagged"] is True
        assert row["flag_reason"] == "stuffing" and row["n_judgments"] == CHEAT_VOTES
    unflagged = client_for(researcher).get("/api/arena/judges/", {"flagged": "0"}).json()
    assert unflagged["count"] == HONEST_VOTERS and not any(row["flagged"] for row in unflagged["results"])
    assert client_for(researcher).get(f"/api/arena/judges/{cheat.pk}/").json()["flagged_by"] == "test"
    assert client_for(researcher).get("/api/arena/judges/", {"flagged": "maybe"}).status_code == 400
    # annotators never see how other voters voted; anonymous visitors nothing at all
    assert client_for(annotator).get("/api/arena/judges/", {"flagged": "1"}).status_code == 403
    assert client_for(annotator).get(f"/api/arena/judges/{cheat.pk}/").status_code == 403
    assert client_for(None).get("/api/arena/judges/").status_code == 401


# --- the migration from Judge.config["review"] -------------------------------------------------


def test_the_migration_moves_config_flags_into_the_review_fields(db):
    from django.apps import apps

    migration = importlib.import_module("arena.migrations.0004_judge_review")
    # given judges flagged the old way, one whose old flag was off, and one never flagged
    old = Judge.objects.create(kind="human", name="old", config={
        "theme": "dark",
        "review": {"flagged": True, "reason": "echo won 40", "p_value": 1e-9, "p_adjusted": 1e-8,
                   "by": "flag_outliers", "at": "2026-03-01T12:00:00+00:00"},
    })  # fmt: skip
    off = Judge.objects.create(kind="human", name="off", config={"review": {"flagged": False}})
    plain = Judge.objects.create(kind="human", name="plain", config={"theme": "light"})
    # when the migration's data step runs
    migration.flags_to_fields(apps, None)
    # then flags live in the fields and no longer in the config
    old.refresh_from_db(), off.refresh_from_db(), plain.refresh_from_db()
    assert old.flagged_at.isoformat() == "2026-03-01T12:00:00+00:00"
    assert (old.flag_reason, old.flagged_by, old.config) == ("echo won 40", "flag_outliers", {"theme": "dark"})
    assert not off.is_flagged and off.config == {}
    assert not plain.is_flagged and plain.config == {"theme": "light"}
    assert list(outliers.flagged_judges()) == [old]
    # and going back puts them where the old code read them
    migration.fields_to_flags(apps, None)
    old.refresh_from_db()
    assert old.config["review"] == {"flagged": True, "reason": "echo won 40", "by": "flag_outliers",
                                    "at": "2026-03-01T12:00:00+00:00"}  # fmt: skip

"""Battle logs as real ones come: degenerate rows are skipped and counted, never a refused
file; a file that is not a log is refused naming where."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from arena.board.battle_logs import BattleLogError, read_battles
from arena.board.snapshots import Scope, latest_snapshot, refresh_arena
from arena.models import Arena, Battle, BattleImport, System

REAL_LOG = Path(__file__).resolve().parents[1] / "data" / "real" / "fastchat-pandalm-battles.json"
REAL_SKIPS = {
    "with model_a and model_b the same system": 17,
    "without a winner": 3,
    "with an unknown winner": 2,
    "without model_b": 2,
    "with an unreadable tstamp": 1,
}
REAL_SUMMARY = (
    "skipped 25 rows: 17 with model_a and model_b the same system, 3 without a winner, "
    "2 with an unknown winner, 2 without model_b, 1 with an unreadable tstamp"
)


def battle(a, b, winner="model_a", **extra):
    return {"model_a": a, "model_b": b, "winner": winner, "tstamp": 1_700_000_000, **extra}


def write(tmp_path, name, content) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="latin-1")
    return path


def test_real_fastchat_log_imports_its_battles_and_counts_the_rows_it_skips(db, capsys):
    # when the real log (2,997 battles + 25 degenerate rows) is imported
    call_command("import_battles", str(REAL_LOG), "--format", "fastchat", "--arena", "pandalm")
    # then every good battle is in, and the output names what was left out and why
    out = capsys.readouterr().out
    assert f"Imported 2997 battles into arena 'pandalm'; {REAL_SUMMARY}." in out
    arena = Arena.objects.get(name="pandalm")
    assert Battle.objects.filter(arena=arena).count() == 2997
    assert set(System.objects.values_list("name", flat=True)) == {
        "bloom-7b", "cerebras-gpt-6.7B", "llama-7b", "opt-7b", "pythia-6.9b"
    }  # fmt: skip
    record = BattleImport.objects.get(arena=arena)
    assert (record.source, record.format, record.imported, record.skipped) == (
        "fastchat-pandalm-battles.json", "fastchat", 2997, REAL_SKIPS
    )  # fmt: skip


def test_the_arenas_board_carries_the_skip_notes_to_the_page(db, client, settings):
    # given the real log imported into an arena and its boards computed
    settings.OPEN_ARENA = True
    call_command("import_battles", str(REAL_LOG), "--arena", "pandalm")
    refresh_arena(Arena.objects.get(name="pandalm"))
    # then the snapshot's notes and the web page say which rows were skipped
    note = f"fastchat-pandalm-battles.json: 2997 battles imported, {REAL_SUMMARY}"
    payload = latest_snapshot(Arena.objects.get(name="pandalm"), Scope("text")).payload
    assert note in payload["warnings"]
    page = client.get("/leaderboard/", {"arena": "pandalm"})
    assert page.status_code == 200 and note in page.content.decode()


def test_leaderboard_from_the_real_log_skips_and_notes_the_bad_rows(capsys):
    call_command("leaderboard", "--battles", str(REAL_LOG), "--ci", "none", "--format", "json")
    data = json.loads(capsys.readouterr().out)
    assert data["n_battles"] == 2997
    assert f"fastchat-pandalm-battles.json: {REAL_SUMMARY}" in data["warnings"]
    call_command("leaderboard", "--battles", str(REAL_LOG), "--ci", "none")
    assert f"note: fastchat-pandalm-battles.json: {REAL_SUMMARY}" in capsys.readouterr().out


def test_leaderboard_of_an_arena_notes_the_rows_its_imports_skipped(db, capsys):
    call_command("import_battles", str(REAL_LOG), "--arena", "pandalm")
    capsys.readouterr()
    call_command("leaderboard", "--arena", "pandalm", "--ci", "none", "--format", "json")
    data = json.loads(capsys.readouterr().out)
    assert data["n_battles"] == 2997
    assert f"fastchat-pandalm-battles.json: 2997 battles imported, {REAL_SUMMARY}" in data["warnings"]


def test_a_clean_log_has_no_skip_note(db, tmp_path, capsys):
    path = write(tmp_path, "clean.json", [battle("a", "b"), battle("b", "c", "tie"), battle("c", "a", "model_b")])
    call_command("import_battles", str(path), "--arena", "clean")
    assert "Imported 3 battles into arena 'clean'; skipped 0 rows." in capsys.readouterr().out
    refresh_arena(Arena.objects.get(name="clean"))
    warnings = latest_snapshot(Arena.objects.get(name="clean"), Scope("text")).payload["warnings"]
    assert not any("skipped" in warning for warning in warnings)


def test_every_kind_of_bad_row_is_counted_under_its_reason(tmp_path):
    rows = [
        battle("a", "b"),
        battle("a", "a"),  # same system
        battle(" a ", "a"),  # same system once trimmed
        battle("a", "b", None),
        battle("a", "b", "bothbad"),
        {"model_a": "a", "winner": "tie"},
        battle("", "b"),
        battle("a", "b" * 201),
        battle("a", "b", tstamp="yesterday"),
        battle("a", "b", tstamp=True),
        battle("b", "a", "tie (bothbad)"),
    ]
    log = read_battles(write(tmp_path, "log.json", rows), "fastchat")
    records = list(log)
    assert [(r.system_a, r.system_b, r.outcome) for r in records] == [("a", "b", "a"), ("b", "a", "both_bad")]
    assert (log.rows, log.battles) == (11, 2)
    assert log.skipped == {
        "with model_a and model_b the same system": 2,
        "without a winner": 1,
        "with an unknown winner": 1,
        "without model_b": 1,
        "without model_a": 1,
        "with a model_b longer than 200 characters": 1,
        "with an unreadable tstamp": 2,
    }


def test_jsonl_rows_are_skipped_and_counted_the_same_way(db, tmp_path, capsys):
    lines = [
        {"system_a": "a", "system_b": "b", "outcome": "a"},
        {"system_a": "a", "system_b": "a", "outcome": "a"},
        {"system_a": "a", "system_b": "b", "outcome": "draw"},
        {"system_a": "a", "system_b": "b", "outcome": None},
        {"system_a": "a", "system_b": "b", "outcome": "b", "weight": -1},
        {"system_a": "a", "system_b": "b", "outcome": "b", "weight": "heavy"},
        {"system_a": "a", "system_b": "b", "outcome": "b", "style": {"a": 1}},
        {"system_b": "b", "outcome": "tie"},
    ]
    path = write(tmp_path, "log.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    call_command("import_battles", str(path), "--format", "jsonl", "--arena", "j")
    out = capsys.readouterr().out
    assert "Imported 1 battles into arena 'j'; skipped 7 rows: " in out
    assert BattleImport.objects.get().skipped == {
        "with system_a and system_b the same system": 1,
        "with an unknown outcome": 1,
        "without an outcome": 1,
        "with a weight that is not a positive number": 1,
        "with a weight that is not a number": 1,
        'with a style that is not {"a": {...}, "b": {...}}': 1,
        "without system_a": 1,
    }


@pytest.mark.parametrize(
    "name, content, fmt, message",
    [
        ("broken.json", '[{"model_a": "a",\n  "model_b": }]', "fastchat", r"not valid JSON \(line 2, column 14"),
        ("object.json", '{"model_a": "a"}', "fastchat", r"expected a JSON array of battles, got dict"),
        ("items.json", json.dumps([battle("a", "b"), 7]), "fastchat", r"battle 2: expected an object, got int"),
        ("broken.jsonl", '{"system_a": "a", "system_b": "b", "outcome": "a"}\n{"system_a": ', "jsonl",
         r"line 2, column 14: not valid JSON"),
        ("list.jsonl", '{"system_a": "a", "system_b": "b", "outcome": "a"}\n[1, 2]\n', "jsonl",
         r"line 2: expected a JSON object, got list"),
        ("log.json.gz", "not gzip", "fastchat", r"not a readable gzip file"),
        ("log.jsonl.gz", "not gzip", "jsonl", r"not a readable gzip file"),
        ("latin1.json", "[{\"model_a\": \"caf\xe9\"}]", "fastchat", r"not UTF-8 text"),
    ],
)  # fmt: skip
def test_a_file_that_is_not_a_log_is_refused_naming_where(db, tmp_path, name, content, fmt, message):
    path = write(tmp_path, name, content)
    with pytest.raises(CommandError, match=rf"nothing imported: .*{name}: {message}"):
        call_command("import_battles", str(path), "--format", fmt, "--arena", "bad")
    with pytest.raises(CommandError, match=message):
        call_command("leaderboard", "--battles", str(path), "--format-in", fmt)
    assert not Arena.objects.exists() and not Battle.objects.exists() and not System.objects.exists()


def test_a_log_with_no_usable_battle_is_refused_with_the_counts(db, tmp_path):
    path = write(tmp_path, "useless.json", [battle("a", "a"), battle("a", "b", None), battle("b", "b")])
    expected = (
        r"useless.json: no usable battle in 3 rows; skipped 3 rows: "
        r"2 with model_a and model_b the same system, 1 without a winner"
    )
    with pytest.raises(CommandError, match=rf"nothing imported: .*{expected}"):
        call_command("import_battles", str(path), "--arena", "useless")
    with pytest.raises(CommandError, match=expected):
        call_command("leaderboard", "--battles", str(path))
    assert not Arena.objects.exists() and not System.objects.exists() and not BattleImport.objects.exists()
    with pytest.raises(BattleLogError, match=r"no usable battle in 0 rows$"):
        list(read_battles(write(tmp_path, "empty.json", []), "fastchat"))


def test_an_imported_log_whose_board_is_not_computed_yet_says_so(db, client, settings,
                                                                 django_capture_on_commit_callbacks):
    # given the real log imported, the refresh it queues not run yet (found walking: the
    # page said "No votes in this board yet" for an arena of 2,997 battles)
    settings.OPEN_ARENA = True
    with django_capture_on_commit_callbacks(execute=False):
        call_command("import_battles", str(REAL_LOG), "--arena", "pandalm")
    body = client.get("/leaderboard/", {"arena": "pandalm"}).content.decode()
    assert 'id="empty"' not in body
    assert "2997 votes in this board, not computed yet" in body and "no refresh is queued" in body
    # when the worker has the refresh queued
    from django.utils import timezone

    Arena.objects.filter(name="pandalm").update(refresh_requested_at=timezone.now())
    body = client.get("/leaderboard/", {"arena": "pandalm"}).content.decode()
    assert "the worker has a refresh queued" in body and "reload in a few seconds" in body
    # and when it has waited longer than any refresh waits, the page asks about the worker
    Arena.objects.filter(name="pandalm").update(refresh_requested_at=timezone.now() - timezone.timedelta(minutes=5))
    body = client.get("/leaderboard/", {"arena": "pandalm"}).content.decode()
    assert "is the worker running" in body and "reload in a few seconds" not in body
    # and once it has run, the board
    refresh_arena(Arena.objects.get(name="pandalm"))
    body = client.get("/leaderboard/", {"arena": "pandalm"}).content.decode()
    assert 'id="pending"' not in body and 'id="board"' in body

"""The columnar battle-log reader gives what the row reader gives: the same battles, in
the same time order, the same skip counts, on the real log and on messy hand-made ones;
and a board from a tiny log has the hand-computed Bradley-Terry ratings."""

import datetime as dt
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from arena.board import battle_logs
from arena.board.battle_logs import BattleLog, read_battle_columns, read_battles
from arena.ratings import TEXT_STYLE_FEATURES, Battles

REAL_LOG = Path(__file__).resolve().parents[1] / "data" / "real" / "fastchat-pandalm-battles.json"
T0 = 1_700_000_000


def row_reader_battles(path, fmt, *, anonymous_only=False, category="", style=False) -> Battles:
    """What `leaderboard --battles` built before the columnar reader: records sorted by
    time, filtered, then `Battles.from_records`."""
    records = sorted(read_battles(path, fmt), key=lambda r: r.tstamp)
    if anonymous_only:
        records = [r for r in records if r.anonymous]
    if category:
        records = [r for r in records if r.category == category]
    rows = [r.as_rating_row() for r in records]
    if not style:
        rows = [{k: v for k, v in r.items() if k not in ("style_a", "style_b")} for r in rows]
    return Battles.from_records(rows, style_features=TEXT_STYLE_FEATURES if style else ())


def column_reader_battles(path, fmt, *, anonymous_only=False, category="", style=False) -> Battles:
    columns = read_battle_columns(path, fmt, anonymous=True, category=True, tstamp=True, style=style)
    if anonymous_only:
        columns = columns.take(columns.anonymous)
    if category:
        columns = columns.take(columns.category == category)
    return columns.in_time_order().to_battles(style)


def assert_same_battles(ours: Battles, theirs: Battles) -> None:
    assert ours.systems == theirs.systems
    for field in ("a", "b", "outcome", "weight", "style_a", "style_b"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(theirs, field), err_msg=field)
    assert ours.style_features == theirs.style_features


def fastchat(a, b, winner="model_a", tstamp=T0, **extra):
    return {"model_a": a, "model_b": b, "winner": winner, "tstamp": tstamp, **extra}


def style(a_tokens, b_tokens, **counts):
    return {"sum_assistant_a_tokens": a_tokens, "sum_assistant_b_tokens": b_tokens, **counts}


MESSY = [
    fastchat("a", "b", tstamp=T0 + 5, anony=False, category="code"),
    fastchat(" b ", "c", "tie", tstamp=T0 + 1.0000005, conv_metadata=style(10, 20)),  # half a microsecond
    fastchat("c", "a", "model_b", tstamp="2023-11-14T22:13:21+01:00", category="code"),
    fastchat("a", "c", "tie (bothbad)", tstamp="2023-11-14 22:13:21", anony=None),  # naive: UTC
    fastchat("a", "a", tstamp=T0),  # same system
    fastchat("a", " a", tstamp=T0),  # same once trimmed
    fastchat("a", "b", None),
    fastchat("a", "b", "bothbad"),
    {"model_a": "a", "winner": "tie"},
    fastchat("", "b"),
    fastchat("   ", "b"),
    fastchat("x" * 201, "b"),
    fastchat("a", "b" * 201),
    fastchat("a", "b", tstamp="yesterday"),
    fastchat("a", "b", tstamp=1e20),  # beyond year 9999
    fastchat("b", "a", "model_b", tstamp=-86400 * 365.25 * 100, conv_metadata="none"),  # 1870: readable
    fastchat("d", "b", tstamp=T0 + 5, anony=0, category=None),  # same time as the first: file order
    fastchat("b", "d", "tie", tstamp=T0 + 2, category=7, conv_metadata=style(1, 2, header_count_a={"h1": 2})),
    fastchat("c", "d", tstamp=T0 + 3, conv_metadata=style(5, 5, bold_count_b={"**": "x"})),  # unreadable style
    fastchat("c", "d", "model_b", tstamp=T0 + 4, judge="j", turn=3, question_id="q", language="English"),
    fastchat("café-7b", "a", "tie", tstamp=T0 + 6, category="code"),  # not ASCII: checked as UTF-8
]


@pytest.fixture
def messy_log(tmp_path) -> Path:
    path = tmp_path / "messy.json"
    path.write_text(json.dumps(MESSY, ensure_ascii=False), encoding="utf-8")  # raw UTF-8, not \\u escapes
    return path


@pytest.mark.parametrize(
    "options",
    [{}, {"anonymous_only": True}, {"category": "code"}, {"category": "7"}, {"anonymous_only": True, "category": "code"}],
)
def test_columns_equal_the_row_reader_on_a_messy_log(messy_log, options):
    assert_same_battles(column_reader_battles(messy_log, "fastchat", **options),
                        row_reader_battles(messy_log, "fastchat", **options))  # fmt: skip


def test_columns_count_every_skipped_row_as_the_row_reader_does(messy_log):
    # given the messy log read both ways
    columns = read_battle_columns(messy_log, "fastchat", anonymous=True, tstamp=True)
    log = read_battles(messy_log, "fastchat")
    records = list(log)
    # then the same rows are skipped under the same reasons
    assert (columns.rows, columns.battles) == (log.rows, log.battles) == (21, 10)
    assert columns.skipped == log.skipped == {
        "with model_a and model_b the same system": 2,
        "without a winner": 1,
        "with an unknown winner": 1,
        "without model_b": 1,
        "without model_a": 2,
        "with a model_a longer than 200 characters": 1,
        "with a model_b longer than 200 characters": 1,
        "with an unreadable tstamp": 2,
    }
    # and every kept time is the row reader's instant, to the microsecond
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert columns.tstamp.tolist() == [(r.tstamp - epoch) // dt.timedelta(microseconds=1) for r in records]
    assert columns.tstamp[1] == (T0 + 1) * 10**6  # 0.5 microseconds rounds half to even
    assert columns.anonymous.tolist() == [r.anonymous for r in records]


def test_style_columns_equal_the_row_readers_and_a_row_without_style_is_refused(messy_log, tmp_path, capsys):
    # given only the rows whose metadata is readable
    readable = [row for row in MESSY if isinstance(row.get("conv_metadata"), dict)][:2]
    path = tmp_path / "styled.json"
    path.write_text(json.dumps(readable))
    # then the style columns are the row reader's
    assert_same_battles(column_reader_battles(path, "fastchat", style=True),
                        row_reader_battles(path, "fastchat", style=True))  # fmt: skip
    styled = read_battle_columns(path, "fastchat", style=True)
    assert styled.style_a.tolist() == [[10.0, 0.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0]]
    # and a log with a battle without style counts is refused for --style-control
    with pytest.raises(CommandError, match="--style-control needs style features on every battle"):
        call_command("leaderboard", "--battles", str(messy_log), "--style-control", "--ci", "none")


def test_a_gzipped_log_reads_as_the_plain_one(messy_log, tmp_path):
    import gzip

    packed = tmp_path / "messy.json.gz"
    packed.write_bytes(gzip.compress(messy_log.read_bytes()))
    assert battle_logs._fastchat_columns(packed, anonymous=False, category=False, tstamp=True, style=False) is not None
    assert_same_battles(column_reader_battles(packed, "fastchat"), column_reader_battles(messy_log, "fastchat"))
    rows = read_battles(messy_log, "fastchat")
    list(rows)
    assert read_battle_columns(packed, "fastchat").skipped == rows.skipped and len(rows.skipped) == 8


def test_times_of_random_fractions_round_as_datetime_does(tmp_path):
    # given many times with sub-microsecond fractions, in shuffled order
    rng = random.Random(5)
    rows = [fastchat("a", "b", tstamp=T0 + rng.random() * 10**6 + rng.choice([0, 5e-7, 2.5e-7])) for _ in range(2000)]
    path = tmp_path / "times.json"
    path.write_text(json.dumps(rows))
    # then each is datetime.fromtimestamp's microsecond
    columns = read_battle_columns(path, "fastchat", tstamp=True)
    expected = [round((dt.datetime.fromtimestamp(r["tstamp"], dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
                      / dt.timedelta(microseconds=1)) for r in rows]  # fmt: skip
    assert columns.tstamp.tolist() == expected


def test_values_of_unexpected_types_fall_back_to_the_row_reader_with_the_same_result(tmp_path, monkeypatch):
    # given a log whose fields the slim decoder refuses (a number for a name, true for a time)
    rows = [*MESSY[:4], fastchat(5, "b"), fastchat("a", "b", tstamp=True), fastchat("a", "b", anony="no")]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(rows))
    # then the slim decoder declines it, and the row reader's columns are the answer
    assert battle_logs._fastchat_columns(path, anonymous=False, category=False, tstamp=True, style=False) is None
    columns = read_battle_columns(path, "fastchat", tstamp=True)
    assert columns.skipped == {"without model_a": 1, "with an unreadable tstamp": 1}
    assert_same_battles(column_reader_battles(path, "fastchat"), row_reader_battles(path, "fastchat"))


def test_the_real_log_reads_the_same_both_ways_and_the_fast_path_is_taken():
    fast = battle_logs._fastchat_columns(REAL_LOG, anonymous=True, category=True, tstamp=True, style=True)
    slow = battle_logs._columns_from_records(
        BattleLog(REAL_LOG, "fastchat"), anonymous=True, category=True, tstamp=True, style=True
    )
    assert fast is not None
    assert (fast.rows, fast.battles, fast.skipped) == (slow.rows, slow.battles, slow.skipped) == (
        3022, 2997, slow.skipped
    )
    for field in ("a", "b", "outcome", "weight", "anonymous", "category", "tstamp", "style_a", "style_b"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(slow, field), err_msg=field)
    for options in ({}, {"style": True}, {"anonymous_only": True}):
        assert_same_battles(column_reader_battles(REAL_LOG, "fastchat", **options),
                            row_reader_battles(REAL_LOG, "fastchat", **options))  # fmt: skip


def test_jsonl_logs_read_through_the_row_reader_into_the_same_battles(tmp_path):
    lines = [
        {"system_a": "a", "system_b": "b", "outcome": "a", "weight": 2.5, "tstamp": "2024-01-02T00:00:00Z"},
        {"system_a": "b", "system_b": "c", "outcome": "tie", "tstamp": "2024-01-01T00:00:00Z",
         "style": {"a": {"length": 3, "headers": 0, "lists": 1, "bold": 0},
                   "b": {"length": 4, "headers": 1, "lists": 0, "bold": 2}}},
        {"system_a": "a", "system_b": "a", "outcome": "a"},
    ]  # fmt: skip
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    assert_same_battles(column_reader_battles(path, "jsonl"), row_reader_battles(path, "jsonl"))
    columns = read_battle_columns(path, "jsonl", style=True)
    assert columns.weight.tolist() == [2.5, 1.0] and columns.has_style().tolist() == [False, True]


def test_a_board_from_a_tiny_log_has_the_hand_computed_ratings_and_intervals(tmp_path, capsys):
    # given: a beats b twice, b beats a once, one tie; a's credit is 2.5 of 4, p = 0.625
    rows = [fastchat("a", "b"), fastchat("b", "a", "model_b"), fastchat("a", "b", "model_b"), fastchat("b", "a", "tie")]
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(rows))
    # when
    call_command("leaderboard", "--battles", str(path), "--ci", "sandwich", "--format", "json")
    board = {row["system"]: row for row in json.loads(capsys.readouterr().out)["systems"]}
    # then the logit gap is ln(0.625 / 0.375) = ln(5/3), split about 1000 on the 400/ln 10 scale
    half_gap = 200 * math.log10(5 / 3)  # 44.37 points
    assert board["a"]["rating"] == pytest.approx(1000 + half_gap, abs=1e-4)
    assert board["b"]["rating"] == pytest.approx(1000 - half_gap, abs=1e-4)
    # and the sandwich variance of the gap is sum (y - p)^2 / (n p (1 - p))^2 = 0.6875 / 0.9375^2;
    # each rating moves by half the gap
    sd_points = math.sqrt(0.6875) / 0.9375 / 2 * 400 / math.log(10)  # 76.8 points
    assert board["a"]["ci_high"] - board["a"]["rating"] == pytest.approx(1.959964 * sd_points, abs=1e-3)
    assert board["a"]["votes"] == board["b"]["votes"] == 4


HEAVY = ("config.urls", "arena.urls", "rest_framework.views", "drf_spectacular.utils", "scipy.stats")
RUN_AND_LIST_HEAVY_MODULES = f"""
import json, sys
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv[1:])
print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))
"""


def test_the_command_from_a_file_starts_without_urls_checks_drf_or_scipy_stats():
    # when a board is printed from a file by a process of its own, as manage.py runs it
    # (call_command skips the system checks, so it would not tell)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_HEAVY_MODULES, "manage.py", "leaderboard", "--battles", str(REAL_LOG),
         "--ci", "sandwich", "--format", "json"],
        cwd=root, capture_output=True, text=True, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"},
    )  # fmt: skip
    # then it rates the log without loading the URL modules (the system checks did), the
    # DRF views and drf-spectacular (the export admin action did) or scipy.stats
    assert done.returncode == 0, done.stderr[-2000:]
    board, _, heavy = done.stdout.rstrip().rpartition("\n")
    assert json.loads(board)["n_battles"] == 2997
    assert json.loads(heavy) == []


@pytest.mark.parametrize(
    "content, message",
    [(b"", r"not valid JSON \(line 1, column 1"), (b'[{"model_a": "caf\xe9", "model_b": "b"}]', r"not UTF-8 text"),
     (b'[{"model_a": "a", "model_b": "b", "winner": "tie", "x": "caf\xe9"}]', r"not UTF-8 text")],
)  # fmt: skip
def test_files_the_slim_decoder_refuses_are_refused_as_the_row_reader_refuses_them(tmp_path, content, message):
    # an empty file cannot be mapped; bad UTF-8 in a field msgspec skips is still bad UTF-8
    path = tmp_path / "log.json"
    path.write_bytes(content)
    with pytest.raises(battle_logs.BattleLogError, match=message):
        read_battle_columns(path, "fastchat")

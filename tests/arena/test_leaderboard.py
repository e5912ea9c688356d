import json
import random
from collections import Counter

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from arena.board.snapshots import (
    Scope,
    battle_counts,
    default_arena,
    latest_snapshot,
    rebuild_battles,
    refresh_arena,
    request_refresh,
)
from arena.models import Arena, Battle, Comparison, ComparisonOrigin, Judgment, LeaderboardSnapshot, System
from arena.ratings import MatchState, pair_weights
from arena.voting import actions
from arena.voting.matchmaking import pair_probabilities


def cast_votes(judge_user_factory, n_voters, prefer, modality="text"):
    """Each voter judges everything available, preferring systems by `prefer(name_a, name_b)`."""
    for v in range(n_voters):
        judge = actions.judge_for_user(judge_user_factory(f"voter{v}"))
        while True:
            try:
                comparison = actions.next_comparison(judge, modality, rng=random.Random(v))
            except Exception:  # noqa: BLE001 - NothingToCompare ends this voter
                break
            verdict = prefer(comparison.output_a.system.name, comparison.output_b.system.name)
            token = actions.issue_vote_token(comparison, judge)
            actions.do_record_judgment(actions.check_vote(token=token, judge=judge, verdict=verdict))


def by_index(name_a, name_b):
    """The system with the higher number wins."""
    return "a" if name_a > name_b else "b"


def test_each_vote_is_one_battle(arena_factory, annotator):
    arena_factory("text")
    judge = actions.judge_for_user(annotator)
    comparison = actions.next_comparison(judge, "text")
    token = actions.issue_vote_token(comparison, judge)
    vote = actions.check_vote(token=token, judge=judge, verdict="b")
    judgment, _ = actions.do_record_judgment(vote)
    actions.do_record_judgment(vote)  # a repeat counts nothing
    battle = Battle.objects.get()
    assert battle.judgment == judgment and battle.outcome == "b"
    assert battle.system_a == comparison.output_a.system and battle.arena.name == "main"
    assert set(battle.style["a"]) == {"length", "headers", "lists", "bold"}
    assert battle.style["a"]["bold"] == 1


def test_imported_comparisons_make_no_arena_battles(arena_factory, annotator):
    arena_factory("text")
    judge = actions.judge_for_user(annotator)
    served = actions.next_comparison(judge, "text")
    Comparison.objects.filter(pk=served.pk).update(origin=ComparisonOrigin.IMPORT)
    comparison = Comparison.objects.get(pk=served.pk)  # an imported comparison, as its token names it
    token = actions.issue_vote_token(comparison, judge)
    actions.do_record_judgment(actions.check_vote(token=token, judge=judge, verdict="a"))
    assert Judgment.objects.count() == 1 and Battle.objects.count() == 0


def test_refresh_is_debounced(db):
    arena = default_arena()
    assert request_refresh(arena) is True
    assert request_refresh(arena) is False  # one refresh already queued
    refresh_arena(arena)  # the task clears the flag when it starts
    assert request_refresh(arena) is True
    Arena.objects.filter(pk=arena.pk).update(refresh_requested_at="2000-01-01T00:00:00Z")
    assert request_refresh(arena) is True  # a lost request is queued again


def test_refresh_builds_boards_that_order_systems_by_wins(arena_factory, make_user):
    # given 4 systems on 3 prompts in two categories, where a higher number always wins
    systems, prompts = arena_factory("text", n_systems=4, n_prompts=3)
    prompts[0].categories = ["coding"]
    prompts[0].save()
    cast_votes(make_user, n_voters=3, prefer=by_index)
    # when
    snapshots = refresh_arena(default_arena())
    # then overall, style-controlled and per-category boards exist
    scopes = {(s.modality, s.category, s.style_control) for s in snapshots}
    assert ("text", "", False) in scopes and ("text", "", True) in scopes and ("text", "coding", False) in scopes
    board = latest_snapshot(default_arena(), Scope("text")).payload
    assert [row["system"] for row in board["systems"]] == ["text-sys-3", "text-sys-2", "text-sys-1", "text-sys-0"]
    assert board["n_battles"] == Battle.objects.count() == 3 * 6 * 3
    assert all(row["ci_low"] < row["rating"] < row["ci_high"] for row in board["systems"])
    assert board["matrices"]["win_rates"][0][-1] == 1.0
    assert {"battle_counts", "predicted_win_rates"} <= set(board["matrices"])
    styled = latest_snapshot(default_arena(), Scope("text", style_control=True)).payload
    assert set(styled["style_coefficients"]) == {"length", "headers", "lists", "bold"}


def test_rebuild_battles_from_judgments(arena_factory, make_user):
    arena_factory("text", n_systems=3, n_prompts=1)
    cast_votes(make_user, n_voters=2, prefer=by_index)
    before = sorted(Battle.objects.values_list("judgment_id", "outcome"))
    assert rebuild_battles() == len(before)
    assert sorted(Battle.objects.values_list("judgment_id", "outcome")) == before


def fastchat_rows(n=300, seed=0):
    strengths = {"alpha": 1.0, "beta": 0.3, "gamma": -0.2, "delta": -1.0}
    rng = random.Random(seed)
    names = list(strengths)
    rows = []
    for i in range(n):
        a, b = rng.sample(names, 2)
        import math

        p = 1 / (1 + math.exp(-(strengths[a] - strengths[b])))
        u = rng.random()
        winner = "tie" if abs(u - p) < 0.05 else ("model_a" if u < p else "model_b")
        if i % 37 == 0:
            winner = "tie (bothbad)"
        rows.append({
            "model_a": a, "model_b": b, "winner": winner, "anony": i % 10 != 0, "tstamp": 1_700_000_000 + i,
            "judge": f"user{i % 7}",
            "conv_metadata": {
                "sum_assistant_a_tokens": 100 + i % 50, "sum_assistant_b_tokens": 120,
                "header_count_a": {"h1": i % 2}, "header_count_b": {"h1": 0},
                "list_count_a": {"ordered": 1, "unordered": i % 3}, "list_count_b": {"ordered": 0, "unordered": 1},
                "bold_count_a": {"**": i % 4, "__": 0}, "bold_count_b": {"**": 1, "__": 0},
            },
        })  # fmt: skip
    return rows


@pytest.fixture
def fastchat_file(tmp_path):
    path = tmp_path / "clean_battle.json"
    path.write_text(json.dumps(fastchat_rows()))
    return path


def test_import_fastchat_log_and_rate_it(db, fastchat_file, capsys):
    call_command("import_battles", str(fastchat_file), "--format", "fastchat", "--arena", "lmsys")
    arena = Arena.objects.get(name="lmsys")
    assert Battle.objects.filter(arena=arena).count() == 300
    assert set(System.objects.values_list("provider", flat=True)) == {"uploaded"}
    assert Battle.objects.filter(arena=arena, anonymous=False).count() == 30
    refresh_arena(arena)
    board = latest_snapshot(arena, Scope("text")).payload
    assert [row["system"] for row in board["systems"]] == ["alpha", "beta", "gamma", "delta"]
    # the database board and the file board agree
    capsys.readouterr()
    call_command("leaderboard", "--battles", str(fastchat_file), "--ci", "sandwich", "--format", "json",
                 "--anonymous-only")  # fmt: skip
    from_file = json.loads(capsys.readouterr().out)
    call_command("leaderboard", "--arena", "lmsys", "--ci", "sandwich", "--format", "json", "--anonymous-only")
    from_db = json.loads(capsys.readouterr().out)
    assert from_file["n_battles"] == from_db["n_battles"] == 270
    assert [r["system"] for r in from_file["systems"]] == [r["system"] for r in from_db["systems"]]
    for file_row, db_row in zip(from_file["systems"], from_db["systems"]):
        assert file_row["rating"] == pytest.approx(db_row["rating"], abs=1e-6)


def test_bad_battle_log_imports_nothing_and_names_the_row(db, tmp_path):
    rows = fastchat_rows(20)
    rows[12] = "model_c"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(CommandError, match=r"battle 13: expected an object, got str"):
        call_command("import_battles", str(path), "--arena", "bad")
    assert Battle.objects.count() == 0 and System.objects.count() == 0 and not Arena.objects.exists()


def test_leaderboard_command_formats_and_options(db, fastchat_file, capsys, tmp_path):
    call_command("leaderboard", "--battles", str(fastchat_file), "--ci", "bootstrap", "--rounds", "50",
                 "--format", "json")  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"method", "n_battles", "components", "systems"}
    assert set(data["systems"][0]) >= {"system", "rating", "ci_low", "ci_high", "rank", "votes", "component"}
    assert data["components"] == [[row["system"] for row in data["systems"]]]

    call_command("leaderboard", "--battles", str(fastchat_file), "--method", "elo", "--ci", "none", "--format", "csv")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("rank,system,rating") and len(lines) == 5

    call_command("leaderboard", "--battles", str(fastchat_file), "--ci", "none", "--both-bad", "drop",
                 "--style-control", "--format", "json")  # fmt: skip
    styled = json.loads(capsys.readouterr().out)
    assert styled["n_battles_used"] < styled["n_battles"]
    assert "style_coefficients" in styled and "rating_without_style" in styled["systems"][0]

    call_command("leaderboard", "--battles", str(fastchat_file), "--ci", "none")
    assert "alpha" in capsys.readouterr().out


def test_disconnected_battle_graph_is_reported(db, tmp_path, capsys):
    path = tmp_path / "two.jsonl"
    lines = [{"system_a": "a1", "system_b": "a2", "outcome": "a"}, {"system_a": "a2", "system_b": "a1", "outcome": "tie"},
             {"system_a": "b1", "system_b": "b2", "outcome": "b"}, {"system_a": "b1", "system_b": "b2", "outcome": "tie"}]  # fmt: skip
    path.write_text("\n".join(json.dumps(line) for line in lines))
    call_command("leaderboard", "--battles", str(path), "--format-in", "jsonl", "--ci", "sandwich", "--format", "json")
    data = json.loads(capsys.readouterr().out)
    assert len(data["components"]) == 2
    assert {row["component"] for row in data["systems"]} == {0, 1}
    assert any("components" in warning for warning in data["warnings"])


def test_leaderboard_page_api_and_downloads(arena_factory, make_user, client, researcher):
    arena_factory("text", n_systems=3, n_prompts=2)
    cast_votes(make_user, n_voters=2, prefer=by_index)
    refresh_arena(default_arena())
    client.force_login(researcher)

    page = client.get("/leaderboard/?modality=text")
    assert page.status_code == 200
    body = page.content.decode()
    assert "text-sys-2" in body and "<svg" in body and 'id="heatmap"' in body and "Style control is off" in body
    assert "Recompute now" in body

    api = client.get("/api/leaderboard/", {"modality": "text"}).json()
    assert api["systems"][0]["system"] == "text-sys-2" and api["snapshot"] is not None

    as_json = client.get("/leaderboard/download/json/?modality=text")
    assert as_json["Content-Disposition"].endswith('.json"') and json.loads(as_json.content)["n_battles"] == 12
    as_csv = client.get("/leaderboard/download/csv/?modality=text").content.decode().splitlines()
    assert as_csv[0].startswith("rank,system") and len(as_csv) == 4

    styled = client.get("/leaderboard/?modality=text&style_control=1").content.decode()
    assert "Style control is <strong>on</strong>" in styled and "Style coefficients" in styled


def test_leaderboard_needs_login_unless_open_arena(db, client, settings):
    assert client.get("/leaderboard/").status_code == 302
    assert client.get("/api/leaderboard/").status_code == 401
    settings.OPEN_ARENA = True
    assert client.get("/leaderboard/").status_code == 200
    assert client.get("/api/leaderboard/").json()["systems"] == []


def test_refresh_button_needs_researcher(db, client, annotator, researcher):
    default_arena()
    client.force_login(annotator)
    assert client.post("/leaderboard/refresh/", {"arena": "main"}).status_code == 403
    client.force_login(researcher)
    response = client.post("/leaderboard/refresh/", {"arena": "main"})
    assert response.status_code == 302
    assert Arena.objects.get(name="main").refresh_requested_at is not None


def test_active_matchmaking_favours_uncertain_pairs(arena_factory, make_user, settings):
    # given a board where s0 and s1 are close and s2 is far ahead with many votes
    settings.MATCHMAKING = "active"
    arena_factory("text", n_systems=3, n_prompts=30)
    names = ["text-sys-0", "text-sys-1", "text-sys-2"]
    LeaderboardSnapshot.objects.create(
        arena=default_arena(), modality="text", n_battles=1000,
        payload={"systems": [
            {"system": names[2], "rating": 1400, "ci_low": 1390, "ci_high": 1410, "votes": 800, "component": 0},
            {"system": names[1], "rating": 1001, "ci_low": 950, "ci_high": 1052, "votes": 40, "component": 0},
            {"system": names[0], "rating": 999, "ci_low": 948, "ci_high": 1050, "votes": 40, "component": 0},
        ]},
    )  # fmt: skip
    # when many voters get their first comparison
    pairs = Counter()
    for v in range(60):
        judge = actions.judge_for_user(make_user(f"v{v}"))
        comparison = actions.next_comparison(judge, "text", rng=random.Random(v))
        pairs[frozenset({comparison.output_a.system.name, comparison.output_b.system.name})] += 1
    # then the uncertain pair dominates, and the others still get explored
    close = pairs[frozenset(names[:2])]
    assert close >= 40
    assert sum(pairs.values()) == 60


def test_active_matchmaking_weighs_pairs_by_the_boards_full_fit(arena_factory, make_user, client, researcher,
                                                               settings):
    # given votes where a higher number always wins, and the worker's refresh
    settings.MATCHMAKING = "active"
    arena_factory("text", n_systems=4, n_prompts=3)
    cast_votes(make_user, n_voters=1, prefer=by_index)
    refresh_arena(default_arena())
    # when matchmaking weighs the arena's pairs
    system_ids = sorted(System.objects.values_list("id", flat=True))
    pairs = [(a, b) for k, a in enumerate(system_ids) for b in system_ids[k + 1:]]
    probabilities = pair_probabilities(pairs, "text")
    # then it weighs them as the prior fit with its full covariance over the same battles
    counts = battle_counts(Battle.objects.all())
    expected = pair_weights(MatchState.from_counts(counts))
    position = {System.objects.get(name=name).id: k for k, name in enumerate(counts.systems)}
    np.testing.assert_allclose(probabilities, [expected[position[a], position[b]] for a, b in pairs], rtol=1e-4)
    # which the snapshot stores for it, and the board's API and downloads leave out
    assert "matchmaking" in latest_snapshot(default_arena(), Scope("text")).payload
    assert "matchmaking" not in latest_snapshot(default_arena(), Scope("text", style_control=True)).payload
    client.force_login(researcher)
    assert "matchmaking" not in client.get("/api/leaderboard/", {"modality": "text"}).json()
    assert "matchmaking" not in json.loads(client.get("/leaderboard/download/json/?modality=text").content)


def test_uniform_matchmaking_spreads_pairs(arena_factory, make_user, settings):
    settings.MATCHMAKING = "uniform"
    arena_factory("text", n_systems=3, n_prompts=30)
    pairs = Counter()
    for v in range(60):
        judge = actions.judge_for_user(make_user(f"v{v}"))
        comparison = actions.next_comparison(judge, "text", rng=random.Random(v))
        pairs[frozenset({comparison.output_a.system_id, comparison.output_b.system_id})] += 1
    assert len(pairs) == 3 and min(pairs.values()) >= 10

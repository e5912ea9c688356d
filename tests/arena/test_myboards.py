"""Issue 15: a personal board per voter, the both-bad rate, activity over time, retired
systems and the category a voter tags while voting. Values are computed by hand."""

import datetime
import json
import math
import random

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from arena import ratings
from arena.board.activity import activity
from arena.board.snapshots import Scope, default_arena, latest_snapshot, output_style, refresh_arena
from arena.models import Battle, BattleSource, Comparison, Judgment, Output, System
from arena.ratings.scale import POINTS_PER_LOGIT
from arena.voting import actions

# --- helpers ---------------------------------------------------------------------------------


def vote_for(judge, winners, modality="text", category=None, seed=0):
    """Serve `judge` one comparison per entry of `winners` and vote for that system (by
    name) on whichever side it is; None votes both_bad."""
    rng = random.Random(seed)
    judgments = []
    for winner in winners:
        comparison = actions.next_comparison(judge, modality, rng=rng)
        name_a = comparison.output_a.system.name
        name_b = comparison.output_b.system.name
        if winner is None:
            verdict = "both_bad"
        else:
            assert winner in (name_a, name_b), "the arena must only hold the winner's pairs"
            verdict = "a" if name_a == winner else "b"
        token = actions.issue_vote_token(comparison, judge)
        vote = actions.check_vote(token=token, judge=judge, verdict=verdict, category=category)
        judgments.append(actions.do_record_judgment(vote)[0])
    return judgments


def bt_two_systems(wins, losses):
    """Two systems, one winning `wins` of `wins + losses`: the MLE gap is ln(wins/losses)
    logits, split evenly around 1000."""
    half = math.log(wins / losses) * POINTS_PER_LOGIT / 2
    return 1000 + half, 1000 - half


def battle(arena, a, b, outcome, tstamp, modality="text", category=""):
    return Battle.objects.create(
        arena=arena, system_a=a, system_b=b, outcome=outcome, modality=modality, category=category,
        source=BattleSource.IMPORT, tstamp=tstamp,
    )  # fmt: skip


# --- 2. both-bad rate ---------------------------------------------------------------------------


def test_both_bad_rate_counts_each_systems_battles_before_the_policy():
    # given s0-s1: a, both_bad, tie, tie; s0-s2: both_bad, both_bad, b, b
    rows = [("s0", "s1", o) for o in ("a", "both_bad", "tie", "tie")] + [
        ("s0", "s2", o) for o in ("both_bad", "both_bad", "b", "b")
    ]
    counts = ratings.BattleCounts.from_records(rows)
    # then by hand: s0 3 of 8, s1 1 of 4, s2 2 of 4
    assert counts.both_bad().tolist() == [3, 1, 2]
    for policy in ("tie", "drop"):
        board = ratings.compute_leaderboard(counts, ci="none", both_bad=policy, min_votes=0)
        rates = {row["system"]: row["both_bad_rate"] for row in board.to_dict()["systems"]}
        assert rates == {"s0": 3 / 8, "s1": 1 / 4, "s2": 2 / 4}


def test_both_bad_rate_is_a_column_of_the_board_page_csv_and_cli(arena_factory, make_user, client, capsys):
    # given 2 systems on 4 prompts; a voter says text-sys-1 wins twice and both are bad twice
    arena_factory("text", n_systems=2, n_prompts=4)
    judge = actions.judge_for_user(make_user("v1"))
    vote_for(judge, ["text-sys-1", None, "text-sys-1", None])
    refresh_arena(default_arena())
    # then each system took part in 4 battles, 2 of them both_bad: 50.0%
    rows = latest_snapshot(default_arena(), Scope("text")).payload["systems"]
    assert [row["both_bad_rate"] for row in rows] == [0.5, 0.5]
    client.force_login(make_user("reader"))
    body = client.get("/leaderboard/?modality=text").content.decode()
    assert "Both bad" in body and body.count('<td class="both-bad">50.0%</td>') == 2
    csv_lines = client.get("/leaderboard/download/csv/?modality=text").content.decode().splitlines()
    assert csv_lines[0].endswith("both_bad_rate,retired") and csv_lines[1].endswith(",0.5,False")
    call_command("leaderboard", "--arena", "main", "--ci", "none")
    assert "50.0%" in capsys.readouterr().out


def test_a_board_computed_before_the_column_shows_a_dash(db, client, make_user):
    from arena.models import LeaderboardSnapshot

    row = {"system": "old", "rating": 1000.0, "ci_low": None, "ci_high": None, "rank": 1, "votes": 3,
           "component": 0, "flagged_low_votes": True}  # fmt: skip
    LeaderboardSnapshot.objects.create(
        arena=default_arena(), modality="text", n_battles=3,
        payload={"method": "bt", "ci": "sandwich", "confidence": 0.95, "n_battles": 3, "components": [["old"]],
                 "systems": [row], "warnings": []},
    )  # fmt: skip
    client.force_login(make_user("reader"))
    page = client.get("/leaderboard/?modality=text")
    assert page.status_code == 200 and '<td class="both-bad">—</td>' in page.content.decode()


# --- 1. personal board ------------------------------------------------------------------------


def test_personal_board_rates_the_voters_own_votes_only(arena_factory, make_user, client, client_for, capsys):
    # given two systems; voter "mine" prefers text-sys-1 3 to 1, another voter the opposite 4 to 0
    arena_factory("text", n_systems=2, n_prompts=4)
    me = make_user("mine")
    vote_for(actions.judge_for_user(me), ["text-sys-1", "text-sys-1", "text-sys-1", "text-sys-0"])
    vote_for(actions.judge_for_user(make_user("other")), ["text-sys-0"] * 4, seed=1)
    high, low = bt_two_systems(3, 1)  # 1095.4 and 904.6

    # when the API answers for the token's user
    data = client_for(me).get("/api/leaderboard/mine/", {"modality": "text"}).json()
    # then only their 4 votes count, and the note says how few they are
    assert data["voter"] == "mine" and data["n_votes"] == 4 and data["n_battles"] == 4
    assert data["note"] == "Based on 4 of your votes; intervals are wide."
    assert [row["system"] for row in data["systems"]] == ["text-sys-1", "text-sys-0"]
    assert data["systems"][0]["rating"] == pytest.approx(high, abs=0.01)
    assert data["systems"][1]["rating"] == pytest.approx(low, abs=0.01)
    assert all(row["votes"] == 4 for row in data["systems"])

    # the page, for the logged-in voter
    client.force_login(me)
    page = client.get("/leaderboard/mine/?modality=text")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Based on 4 of your votes; intervals are wide." in body and f"{high:.1f}" in body

    # the CLI, by username
    call_command("leaderboard", "--voter", "mine", "--ci", "none", "--format", "json")
    cli = json.loads(capsys.readouterr().out)
    assert cli["n_votes"] == 4 and cli["systems"][0]["rating"] == pytest.approx(high, abs=0.01)
    assert cli["note"] == "Based on 4 of your votes; intervals are wide."
    call_command("leaderboard", "--voter", "mine", "--ci", "none")
    assert "mine: Based on 4 of your votes; intervals are wide." in capsys.readouterr().out


def test_personal_board_without_votes_and_bad_input(arena_factory, make_user, client, client_for):
    arena_factory("text", n_systems=2, n_prompts=1)
    fresh = make_user("fresh")
    data = client_for(fresh).get("/api/leaderboard/mine/").json()
    assert data["n_votes"] == 0 and data["systems"] == [] and "no votes here yet" in data["note"]
    client.force_login(fresh)
    assert "no votes here yet" in client.get("/leaderboard/mine/").content.decode()
    bad = client_for(fresh).get("/api/leaderboard/mine/", {"modality": "smell"})
    assert bad.status_code == 400 and "unknown modality 'smell'" in bad.json()["detail"]
    assert client.get("/leaderboard/mine/?modality=smell").status_code == 400
    with pytest.raises(CommandError, match="no voter named 'nobody'"):
        call_command("leaderboard", "--voter", "nobody")
    with pytest.raises(CommandError, match="fresh has no votes to rate"):
        call_command("leaderboard", "--voter", "fresh")


def test_personal_board_of_an_anonymous_voter_in_the_open_arena(arena_factory, client, settings):
    settings.OPEN_ARENA = True
    arena_factory("text", n_systems=2, n_prompts=2)
    served = client.get("/api/arena/next/").json()
    voted = client.post("/api/arena/vote/", {"token": served["token"], "verdict": "a"}, content_type="application/json")
    assert voted.status_code == 201
    winner = voted.json()["reveal"]["a"]["system"]
    data = client.get("/api/leaderboard/mine/").json()
    assert data["n_votes"] == 1 and data["systems"][0]["system"] == winner
    assert data["note"] == "Based on 1 of your vote; intervals are wide."
    assert client.get("/leaderboard/mine/").status_code == 200


# --- 3. activity ------------------------------------------------------------------------------


@pytest.fixture
def dated_battles(db):
    arena = default_arena()
    s0 = System.objects.create(name="s0")
    s1 = System.objects.create(name="s1")
    img0 = System.objects.create(name="img0", modality="image")
    img1 = System.objects.create(name="img1", modality="image")
    at = datetime.datetime(2026, 11, 1, 9, tzinfo=datetime.timezone.utc)
    battle(arena, s0, s1, "a", at)
    battle(arena, s0, s1, "b", at.replace(hour=23, minute=59))
    battle(arena, img0, img1, "tie", at + datetime.timedelta(days=2), modality="image")
    battle(arena, s1, s0, "both_bad", at + datetime.timedelta(days=2))
    return arena


def test_activity_counts_votes_per_day_and_modality(dated_battles):
    data = activity(dated_battles)
    assert data["days"] == [
        {"day": "2026-11-01", "text": 2, "image": 0, "audio": 0, "total": 2},
        {"day": "2026-11-02", "text": 0, "image": 0, "audio": 0, "total": 0},
        {"day": "2026-11-03", "text": 1, "image": 1, "audio": 0, "total": 2},
    ]
    assert data["totals"] == {"text": 3, "image": 1, "audio": 0} and data["total"] == 4
    # the last 2 days up to 2026-11-04: 11-03 and an empty 11-04
    window = activity(dated_battles, days=2, today=datetime.date(2026, 11, 4))
    assert [(d["day"], d["total"]) for d in window["days"]] == [("2026-11-03", 2), ("2026-11-04", 0)]


def test_activity_page_api_and_cli(dated_battles, client, make_user, capsys):
    client.force_login(make_user("reader"))
    api = client.get("/api/leaderboard/activity/", {"arena": "main"}).json()
    assert [d["total"] for d in api["days"]] == [2, 0, 2] and api["total"] == 4
    page = client.get("/leaderboard/activity/?arena=main")
    body = page.content.decode()
    assert page.status_code == 200 and 'id="activity-chart"' in body
    # one rect per non-empty (day, modality): text 11-01, text 11-03, image 11-03
    assert body.count("<rect ") == 3 and "2026-11-03: 1 image" in body
    # its JSON link answers JSON, not the browsable API (whose page links to endpoints voters may not read)
    link = "/api/leaderboard/activity/?format=json&amp;arena=main"
    assert link in body
    assert client.get(link.replace("&amp;", "&"), HTTP_ACCEPT="text/html")["Content-Type"] == "application/json"
    bad = client.get("/api/leaderboard/activity/", {"days": "many"})
    assert bad.status_code == 400 and "days must be a whole number" in bad.json()["detail"]
    assert client.get("/leaderboard/activity/?days=0").status_code == 400
    call_command("leaderboard", "--arena", "main", "--activity", "--format", "csv")
    assert capsys.readouterr().out.splitlines() == [
        "day,text,image,audio,total", "2026-11-01,2,0,0,2", "2026-11-02,0,0,0,0", "2026-11-03,1,1,0,2",
    ]  # fmt: skip
    with pytest.raises(CommandError, match="--activity needs --arena"):
        call_command("leaderboard", "--voter", "reader", "--activity")
    assert "Activity over time" in client.get("/leaderboard/").content.decode()


# --- 4. retired systems ----------------------------------------------------------------------


def test_retiring_needs_an_admin_and_is_recorded(arena_factory, make_user, client_for):
    systems, _ = arena_factory("text", n_systems=3, n_prompts=1)
    target = systems[2]
    for role in ("annotator", "researcher"):
        denied = client_for(make_user(role, role)).post(f"/api/systems/{target.pk}/retire/")
        assert denied.status_code == 403
    assert client_for(None).post(f"/api/systems/{target.pk}/retire/").status_code in (401, 403)
    admin = make_user("boss", "admin")
    answer = client_for(admin).post(f"/api/systems/{target.pk}/retire/")
    assert answer.status_code == 200 and answer.json()["retired_by"] == "boss" and answer.json()["is_active"] is False
    target.refresh_from_db()
    assert target.is_retired and not target.is_active
    back = client_for(admin).post(f"/api/systems/{target.pk}/unretire/").json()
    assert back["retired_at"] is None and back["is_active"] is True


def test_researchers_are_not_offered_the_retire_action_in_the_admin(arena_factory, make_user, client):
    systems, _ = arena_factory("text", n_systems=2, n_prompts=1)
    client.force_login(make_user("res", "researcher"))
    changelist = client.get("/admin/arena/system/")
    assert changelist.status_code == 200 and 'value="retire"' not in changelist.content.decode()
    client.post("/admin/arena/system/", {"action": "retire", "_selected_action": [systems[0].pk]})
    assert not System.objects.get(pk=systems[0].pk).is_retired
    client.force_login(make_user("boss", "admin"))
    assert 'value="retire"' in client.get("/admin/arena/system/").content.decode()


def test_retired_system_is_never_served_and_its_pending_comparison_is_dropped(arena_factory, make_user):
    arena_factory("text", n_systems=3, n_prompts=3)
    judge = actions.judge_for_user(make_user("v"))
    rng = random.Random(0)
    pending = actions.next_comparison(judge, "text", rng=rng)
    assert actions.next_comparison(judge, "text", rng=rng).pk == pending.pk  # unanswered: served again
    retired = pending.output_a.system
    # when
    call_command("retire_system", retired.name)
    # then the pending comparison is not served again, and no new one has the retired system:
    # the 3 prompts of the one pair left, then nothing
    for _ in range(3):
        comparison = actions.next_comparison(judge, "text", rng=rng)
        assert comparison.pk != pending.pk
        assert retired.pk not in (comparison.output_a.system_id, comparison.output_b.system_id)
        token = actions.issue_vote_token(comparison, judge)
        actions.do_record_judgment(actions.check_vote(token=token, judge=judge, verdict="a"))
    with pytest.raises(Exception, match="nothing left for you to compare"):
        actions.next_comparison(judge, "text", rng=rng)


def test_retired_system_is_hidden_from_the_current_board_and_kept_in_history(
    arena_factory, make_user, client, client_for, capsys
):
    # given 3 systems where the higher number always wins: ranks sys-2, sys-1, sys-0
    arena_factory("text", n_systems=3, n_prompts=4)
    for v in range(3):
        judge = actions.judge_for_user(make_user(f"voter{v}"))
        while True:
            try:
                comparison = actions.next_comparison(judge, "text", rng=random.Random(v))
            except Exception:  # noqa: BLE001 - NothingToCompare: this voter is done
                break
            a, b = comparison.output_a.system.name, comparison.output_b.system.name
            token = actions.issue_vote_token(comparison, judge)
            actions.do_record_judgment(actions.check_vote(token=token, judge=judge, verdict="a" if a > b else "b"))
    refresh_arena(default_arena())
    n_battles = Battle.objects.count()
    full = latest_snapshot(default_arena(), Scope("text")).payload
    assert [r["system"] for r in full["systems"]] == ["text-sys-2", "text-sys-1", "text-sys-0"]
    # ranks among the two left: 1 + the shown systems whose interval lies wholly above
    sys1, sys0 = full["systems"][1], full["systems"][2]
    rank_without = [1, 1 + (sys1["ci_low"] > sys0["ci_high"])]

    # when an admin retires the leader in the Django admin
    admin = make_user("boss", "admin")
    client.force_login(admin)
    leader = System.objects.get(name="text-sys-2")
    response = client.post(
        "/admin/arena/system/", {"action": "retire", "_selected_action": [leader.pk]}, follow=True
    )
    assert response.status_code == 200 and "1 system(s) retired." in response.content.decode()

    # then the current board hides it and re-ranks the others; its battles stay
    assert Battle.objects.count() == n_battles
    api = client_for(make_user("reader")).get("/api/leaderboard/", {"modality": "text"}).json()
    assert [(r["system"], r["rank"], r["retired"]) for r in api["systems"]] == [
        ("text-sys-1", rank_without[0], False), ("text-sys-0", rank_without[1], False)
    ]  # fmt: skip
    assert api["matrices"]["systems"] == ["text-sys-1", "text-sys-0"]
    assert len(api["matrices"]["win_rates"]) == 2 and len(api["matrices"]["win_rates"][0]) == 2
    assert list(api["retired_systems"]) == ["text-sys-2"]
    # the retired tab shows the whole history, marked
    everything = client_for(make_user("reader2")).get(
        "/api/leaderboard/", {"modality": "text", "include_retired": "1"}
    ).json()  # fmt: skip
    assert [(r["system"], r["rank"], r["retired"]) for r in everything["systems"]] == [
        (r["system"], r["rank"], r["system"] == "text-sys-2") for r in full["systems"]
    ]
    page = client.get("/leaderboard/?modality=text").content.decode()
    assert "text-sys-2" not in page.split('id="board"')[1].split("</table>")[0]
    assert 'id="tab-retired"' in page and "Including retired (1)" in page
    retired_tab = client.get("/leaderboard/?modality=text&include_retired=1").content.decode()
    assert 'class="flag retired"' in retired_tab and "text-sys-2" in retired_tab
    csv_lines = client.get("/leaderboard/download/csv/?modality=text").content.decode().splitlines()
    assert len(csv_lines) == 3 and not any("text-sys-2" in line for line in csv_lines)
    # the CLI hides it too, unless asked
    call_command("leaderboard", "--arena", "main", "--ci", "none", "--format", "csv")
    assert "text-sys-2" not in capsys.readouterr().out
    call_command("leaderboard", "--arena", "main", "--ci", "none", "--include-retired")
    assert "(retired)" in [line for line in capsys.readouterr().out.splitlines() if "text-sys-2" in line][0]


def test_hide_retired_reranks_by_intervals_and_trims_the_matrices():
    from arena.board.retirement import hide_retired

    def row(name, rating, low, high, rank):
        return {"system": name, "rating": rating, "ci_low": low, "ci_high": high, "rank": rank, "component": 0}

    data = {
        "systems": [row("A", 1100, 1050, 1150, 1), row("B", 1000, 960, 1040, 2), row("C", 990, 900, 1080, 1),
                    row("D", 800, 750, 850, 4)],
        "components": [["A", "B", "C", "D"]],
        "matrices": {"systems": ["A", "B", "C", "D"], "win_rates": [[None, 1, 2, 3], [4, None, 5, 6],
                                                                      [7, 8, None, 9], [10, 11, 12, None]]},
    }  # fmt: skip
    shown = hide_retired(data, {"B": "2026-12-01T00:00:00+00:00"}, include=False)
    # A: nothing wholly above; C (high 1080): A's low 1050 is not above; D (high 850): A and C are
    assert [(r["system"], r["rank"]) for r in shown["systems"]] == [("A", 1), ("C", 1), ("D", 3)]
    assert shown["components"] == [["A", "C", "D"]]
    assert shown["matrices"] == {"systems": ["A", "C", "D"], "win_rates": [[None, 2, 3], [7, None, 9], [10, 12, None]]}
    everything = hide_retired(data, {"B": "2026-12-01T00:00:00+00:00"}, include=True)
    assert [(r["system"], r["rank"], r["retired"]) for r in everything["systems"]] == [
        ("A", 1, False), ("B", 2, True), ("C", 1, False), ("D", 4, False)
    ]  # fmt: skip


def test_retired_system_leaves_live_battles(db):
    from arena.live.battles import live_candidates
    from arena.live.streaming import LIVE_PROVIDERS

    provider = sorted(LIVE_PROVIDERS)[0]
    for name in ("live-a", "live-b", "live-c"):
        System.objects.create(name=name, provider=provider)
    call_command("retire_system", "live-b")
    assert sorted(live_candidates("text").values_list("name", flat=True)) == ["live-a", "live-c"]
    # an admin switching is_active back on does not bring a retired system back: only --undo does
    System.objects.filter(name="live-b").update(is_active=True)
    assert "live-b" not in live_candidates("text").values_list("name", flat=True)


def test_retire_command_undo_and_bad_name(db, capsys):
    System.objects.create(name="old")
    call_command("retire_system", "old")
    call_command("retire_system", "old")
    call_command("retire_system", "old", "--undo")
    out = capsys.readouterr().out.splitlines()
    assert out == ["old: retired", "old: already retired; nothing changed", "old: brought back"]
    assert System.objects.get(name="old").is_active
    with pytest.raises(CommandError, match="no system named 'new'"):
        call_command("retire_system", "new")


# --- 5. category at vote time -------------------------------------------------------------


def test_vote_time_category_goes_on_the_judgment_and_the_battle(arena_factory, make_user, client_for, settings):
    # given an arena whose prompts carry no category; the operator lists two
    settings.ARENA_CATEGORIES = ["coding", "maths"]
    _, prompts = arena_factory("text", n_systems=2, n_prompts=3)
    prompts[0].categories = ["poetry"]
    prompts[0].save()
    user = make_user("v")
    api = client_for(user)
    tagged = []
    for category in ("coding", "", "poetry"):
        served = api.get("/api/arena/next/").json()
        answer = api.post("/api/arena/vote/", {"token": served["token"], "verdict": "a", "category": category},
                          format="json")  # fmt: skip
        assert answer.status_code == 201, answer.json()
        tagged.append((served["comparison"], category))
    # then the tag is stored on the judgment and decides the battle's category
    for public_id, category in tagged:
        judgment = Judgment.objects.get(comparison__public_id=public_id)
        prompt_category = (judgment.comparison.prompt.categories or [""])[0]
        assert judgment.metadata.get("category", "") == category
        assert judgment.battle.category == (category or prompt_category)
    # and the per-category board counts it
    refresh_arena(default_arena())
    coding = latest_snapshot(default_arena(), Scope("text", category="coding"))
    assert coding is not None and coding.n_battles == 1


def test_unknown_category_is_refused_and_writes_nothing(arena_factory, make_user, client_for, settings):
    settings.ARENA_CATEGORIES = ["coding"]
    arena_factory("text", n_systems=2, n_prompts=1)
    api = client_for(make_user("v"))
    served = api.get("/api/arena/next/").json()
    answer = api.post("/api/arena/vote/", {"token": served["token"], "verdict": "a", "category": "cooking"},
                      format="json")  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["detail"] == "unknown category 'cooking' for text; choose one of coding"
    wrong_type = api.post("/api/arena/vote/", {"token": served["token"], "verdict": "a", "category": 3}, format="json")
    assert wrong_type.status_code == 400 and wrong_type.json()["detail"] == "category must be a string"
    assert Judgment.objects.count() == 0 and Battle.objects.count() == 0


def test_a_tagged_vote_costs_no_extra_query(arena_factory, make_user, settings):
    settings.ARENA_CATEGORIES = ["coding"]
    settings.ARENA_CACHE_CHECK_SECONDS = 3600  # no change-stamp read inside the measured calls
    arena_factory("text", n_systems=3, n_prompts=2)
    judge = actions.judge_for_user(make_user("v"))
    served = []
    for _ in range(3):
        comparison = actions.next_comparison(judge, "text", rng=random.Random())
        token = actions.issue_vote_token(comparison, judge)
        actions.check_vote(token=token, judge=judge, verdict="a", category="coding")  # warms the copies
        served.append(token)
        Comparison.objects.filter(pk=comparison.pk).update(served_to=None)  # serve the next one

    def measured(token, category):
        with CaptureQueriesContext(connection) as checking:
            vote = actions.check_vote(token=token, judge=judge, verdict="a", category=category)
        with CaptureQueriesContext(connection) as recording:
            actions.do_record_judgment(vote)
        return len(checking), len(recording)

    # a first vote claims the board's refresh and fills the per-process copies the writer
    # reads (the default arena, each output's style counts); the next two are measured in
    # the steady state
    for output in Output.objects.all():
        output_style(output)
    measured(served[0], None)
    # checking reads nothing either way; recording runs the same statements
    untagged, tagged = measured(served[1], None), measured(served[2], "coding")
    assert untagged == tagged and tagged[0] == 0
    assert list(Battle.objects.values_list("category", flat=True).order_by("id")) == ["", "", "coding"]


def test_arena_page_offers_the_categories(arena_factory, make_user, client, settings):
    settings.ARENA_CATEGORIES = ["coding", "maths"]
    arena_factory("text", n_systems=2, n_prompts=1)
    client.force_login(make_user("v"))
    body = client.get("/?modality=text").content.decode()
    assert 'id="category"' in body and '<option value="maths">maths</option>' in body


# --- journeys: every new page for every role, after votes exist ----------------------------


@pytest.mark.parametrize("open_arena", [False, True])
def test_new_pages_answer_each_role(arena_factory, make_user, client, settings, open_arena):
    settings.OPEN_ARENA = open_arena
    arena_factory("text", n_systems=3, n_prompts=2)
    users = {role: make_user(role, role) for role in ("annotator", "researcher", "admin")}
    vote_for(actions.judge_for_user(users["annotator"]), [None, None])
    refresh_arena(default_arena())
    call_command("retire_system", "text-sys-0")
    pages = ["/leaderboard/", "/leaderboard/?include_retired=1", "/leaderboard/mine/", "/leaderboard/activity/",
             "/api/leaderboard/mine/", "/api/leaderboard/activity/", "/api/leaderboard/?include_retired=1"]  # fmt: skip
    for role, user in {"anonymous": None, **users}.items():
        client.logout()
        if user is not None:
            client.force_login(user)
        for url in pages:
            status = client.get(url).status_code
            if user is None and not open_arena:
                assert status in (302, 401), (role, url, status)
            else:
                assert status == 200, (role, url, status)
    client.force_login(users["annotator"])
    mine = client.get("/api/leaderboard/mine/").json()
    assert mine["n_votes"] == 2 and all(row["both_bad_rate"] == 1.0 for row in mine["systems"])
    assert Comparison.objects.count() >= 2

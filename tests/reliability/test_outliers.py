"""Outlier voters: the score test is calibrated on honest voters, finds stuffers who
promote a system and voters who click at random, and flagged judgments can be left out."""

import numpy as np
import pytest
from django.core.management import call_command

from arena.board import outliers
from arena.board.outliers import VoteRow
from arena.models import Arena, Battle, Judge, Judgment

STRENGTHS = {"alpha": 1.2, "bravo": 0.6, "charlie": 0.0, "delta": -0.5, "echo": -1.3}  # logits


def simulate(rng, voters, votes_each, behaviour="honest", tie_rate=0.1):
    """Votes on random pairs (voters cannot pick theirs). behaviour: honest, random, or
    promote:<system> (always vote for it when it appears, honest otherwise)."""
    names = list(STRENGTHS)
    rows = []
    for voter in voters:
        for _ in range(votes_each):
            i, j = rng.choice(len(names), 2, replace=False)
            a, b = names[i], names[j]
            p = 1 / (1 + np.exp(-(STRENGTHS[a] - STRENGTHS[b])))
            if behaviour.startswith("promote:") and behaviour.split(":")[1] in (a, b):
                outcome = "a" if a == behaviour.split(":")[1] else "b"
            elif rng.random() < tie_rate:
                outcome = "tie"
            elif behaviour == "random":
                outcome = "a" if rng.random() < 0.5 else "b"
            else:
                outcome = "a" if rng.random() < p else "b"
            rows.append(VoteRow(voter, a, b, outcome))
    return rows


def test_honest_voters_are_not_flagged_and_p_values_are_calibrated():
    # given 300 honest voters with 30 votes each
    rng = np.random.default_rng(7)
    rows = simulate(rng, [f"h{k}" for k in range(300)], 30)
    # when every voter is tested
    report = outliers.find_outliers(rows, min_votes=20)
    # then nobody is flagged, and raw p-values look uniform (about 5% below 0.05)
    p_values = np.array([r.p_value for r in report.results])
    assert len(p_values) == 300 and report.flagged == []
    assert 0.01 <= np.mean(p_values < 0.05) <= 0.10
    assert 0.35 <= np.mean(p_values) <= 0.65


def test_stuffers_and_random_clickers_are_flagged():
    # given an honest crowd, two voters promoting the weakest system and one clicking at random
    rng = np.random.default_rng(11)
    rows = simulate(rng, [f"h{k}" for k in range(150)], 30)
    rows += simulate(rng, ["stuffer-1", "stuffer-2"], 60, behaviour="promote:echo")
    rows += simulate(rng, ["clicker"], 150, behaviour="random")
    # when
    report = outliers.find_outliers(rows, min_votes=20, alpha=0.01)
    # then exactly those three are flagged, and the reason names the promoted system
    assert {r.voter for r in report.flagged} == {"stuffer-1", "stuffer-2", "clicker"}
    stuffer = next(r for r in report.results if r.voter == "stuffer-1")
    assert stuffer.system == "echo" and stuffer.z > 3 and stuffer.wins > stuffer.expected_wins + 10
    assert "echo won" in stuffer.reason
    clicker = next(r for r in report.results if r.voter == "clicker")
    assert clicker.agreement < clicker.expected_agreement


def test_a_cluster_of_stuffers_cannot_hide_by_moving_the_board():
    # given as many stuffer votes as honest ones: on the first fit the board leans their way
    rng = np.random.default_rng(3)
    rows = simulate(rng, [f"h{k}" for k in range(40)], 30)
    rows += simulate(rng, [f"s{k}" for k in range(12)], 100, behaviour="promote:echo")
    report = outliers.find_outliers(rows, min_votes=20)
    # then refitting without the flagged ones finds the whole cluster
    assert {r.voter for r in report.flagged} >= {f"s{k}" for k in range(12)}
    assert not any(r.voter.startswith("h") for r in report.flagged)


def test_few_votes_are_not_tested():
    rng = np.random.default_rng(5)
    rows = simulate(rng, [f"h{k}" for k in range(30)], 30) + simulate(rng, ["new"], 5, behaviour="promote:echo")
    report = outliers.find_outliers(rows, min_votes=20)
    assert "new" in report.untested and all(r.voter != "new" for r in report.results)


def test_multiple_testing_corrections():
    p = np.array([0.001, 0.01, 0.03, 0.5])
    assert np.allclose(outliers.adjust(p, "holm"), [0.004, 0.03, 0.06, 0.5])
    assert np.allclose(outliers.adjust(p, "bh"), [0.004, 0.02, 0.04, 0.5])
    with pytest.raises(ValueError):
        outliers.adjust(p, "none")


def _hand_written_adjust(p_values: np.ndarray, method: str) -> np.ndarray:
    """The corrections as Duet wrote them by hand before using statsmodels: the reference
    the library must match, step for step (Holm 1979; Benjamini & Hochberg 1995)."""
    m = len(p_values)
    order = np.argsort(p_values)
    ranked = p_values[order]
    if method == "holm":
        adjusted = np.maximum.accumulate(np.minimum(1.0, ranked * (m - np.arange(m))))
    else:
        adjusted = np.minimum(1.0, np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1])
    out = np.empty(m)
    out[order] = adjusted
    return out


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_corrections_match_the_hand_written_ones(method):
    rng = np.random.default_rng(11)
    for size in (1, 2, 7, 50, 400):
        # uniform p-values, some tiny, with ties (a voter pool often has equal p-values)
        p = np.concatenate([rng.uniform(size=size), rng.uniform(0, 1e-4, size=size // 3)])
        p[: size // 4] = p[size // 4 : 2 * (size // 4)]
        assert np.allclose(outliers.adjust(p, method), _hand_written_adjust(p, method), rtol=0, atol=1e-12)
    assert outliers.adjust(np.array([]), method).size == 0


@pytest.fixture
def voted_arena(db):
    """The built-in arena with battles from real judges: honest ones and one stuffer."""
    from arena.models import Comparison, Output, Prompt, System

    rng = np.random.default_rng(1)
    arena = Arena.objects.create(name="main")
    systems = {name: System.objects.create(name=name) for name in STRENGTHS}
    prompt = Prompt.objects.create(text="Which is better?")
    outputs = {name: Output.objects.create(system=s, prompt=prompt, text=name) for name, s in systems.items()}
    rows = simulate(rng, [f"h{k}" for k in range(40)], 25) + simulate(rng, ["cheat"], 60, behaviour="promote:echo")
    judges = {}
    for row in rows:
        judge = judges.get(row.voter) or judges.setdefault(row.voter, Judge.objects.create(kind="human", name=row.voter))
        comparison = Comparison.objects.create(prompt=prompt, output_a=outputs[row.system_a], output_b=outputs[row.system_b])
        judgment = Judgment.objects.create(comparison=comparison, judge=judge, verdict=row.outcome)
        Battle.objects.create(
            arena=arena, system_a=systems[row.system_a], system_b=systems[row.system_b], outcome=row.outcome,
            judge_name=row.voter, judgment=judgment, tstamp=judgment.created_at,
        )  # fmt: skip
    # an imported battle (no judge) must survive exclusion
    Battle.objects.create(arena=arena, system_a=systems["alpha"], system_b=systems["echo"], outcome="a",
                          source="import", judge_name="somebody", tstamp=judgment.created_at)  # fmt: skip
    return arena, judges


def test_flag_outliers_command_marks_and_judgments_can_be_excluded(voted_arena, capsys):
    arena, judges = voted_arena
    # when the command runs without --mark, it only lists
    call_command("flag_outliers")
    listed = capsys.readouterr().out
    assert "1 flagged" in listed and f"judge:{judges['cheat'].pk}: " in listed and "echo won" in listed
    assert not outliers.flagged_judges().exists()
    # with --mark it records the flag on the judge
    call_command("flag_outliers", "--mark", "--format", "json")
    assert list(outliers.flagged_judges()) == [judges["cheat"]]
    assert "echo won" in Judge.objects.get(name="cheat").flag_reason
    # then the cheat's judgments and battles can be left out; imported battles stay
    battles = outliers.exclude_flagged(Battle.objects.filter(arena=arena), "judgment__judge")
    assert battles.count() == Battle.objects.count() - 60
    assert battles.filter(source="import").count() == 1
    judgments = outliers.exclude_flagged(Judgment.objects.all(), "judge")
    assert not judgments.filter(judge__name="cheat").exists() and judgments.count() == 40 * 25
    # and a reviewer can clear it
    outliers.clear_flag(judges["cheat"])
    assert not outliers.flagged_judges().exists()

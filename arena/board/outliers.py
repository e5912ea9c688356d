"""Voters whose votes disagree with the crowd more than chance allows (LMArena's anomalous-
user screening): each voter's decisive votes are tested against the win probabilities of
the Bradley-Terry board fitted to everyone else's, and the p-values corrected for testing
many voters at once. Flagged voters are listed for review; once marked (`Judge.flagged_at`),
their judgments are left out of the leaderboards and, by default, of exports while
DUET_EXCLUDE_FLAGGED_VOTERS is on, until a reviewer clears the flag in the admin.

The test, per voter. Under the null hypothesis the voter's vote on battle k (system i vs
j) says "i" with the crowd's probability p_k = sigmoid(s_i - s_j). The alternative gives
the voter their own board: P = sigmoid(beta * logit(p_k) + d_i - d_j), a shift d for each
system (a voter promoting or burying a system) and a sharpness beta (beta near 0: clicking
at random; beta < 0: voting against the crowd on purpose). The score (Rao) test of d = 0,
beta = 1 is U' I^+ U on U = X'(y - p), I = X' diag(p(1 - p)) X, chi-squared with rank(I)
degrees of freedom. Unlike a saturated per-pair likelihood-ratio (G) test it stays
calibrated when a voter judged each pair once or twice, which is what arena voters do: a
G test over pairs with one vote each flags honest voters (E[G] = 1.39 per pair against
1 degree of freedom at p = 0.5).

Ties and both_bad carry no direction and are left out; voters with fewer than
`min_votes` decisive votes are not tested (the chi-squared approximation needs some).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

DEFAULT_ALPHA = 0.01
DEFAULT_MIN_VOTES = 20
# Flagged voters are left out and the crowd refitted until the set stops changing: a
# cluster of stuffers moves the board toward themselves and would otherwise hide.
MAX_ROUNDS = 5
# A weak ridge on the crowd's strengths keeps an unbeaten system's rating finite and
# systems in separate comparison graphs near 50/50 against each other.
CROWD_L2 = 0.1
P_FLOOR = 1e-6


@dataclass(frozen=True)
class VoteRow:
    voter: str  # a judge's key: "judge:<id>" for Duet voters, "name:<judge_name>" for imported logs
    system_a: str
    system_b: str
    outcome: str  # a, b, tie, both_bad


@dataclass(frozen=True)
class VoterResult:
    voter: str
    n_votes: int  # decisive votes tested
    statistic: float
    df: int
    p_value: float
    p_adjusted: float = float("nan")
    flagged: bool = False
    # The voter's most lopsided system: wins observed vs expected from the crowd, and z.
    system: str = ""
    wins: int = 0
    expected_wins: float = 0.0
    z: float = 0.0
    # Share of votes for the crowd's favourite in each battle, observed vs expected.
    agreement: float = float("nan")
    expected_agreement: float = float("nan")

    @property
    def reason(self) -> str:
        parts = [f"{self.n_votes} decisive votes, score test chi2={self.statistic:.1f} on {self.df} df, "
                 f"p={self.p_value:.2g} (adjusted {self.p_adjusted:.2g})"]  # fmt: skip
        if self.system:
            parts.append(
                f"{self.system} won {self.wins} of its battles with this voter where the crowd expects "
                f"{self.expected_wins:.1f} (z={self.z:+.1f})"
            )
        parts.append(f"sided with the crowd's favourite {self.agreement:.0%} of the time (expected "
                     f"{self.expected_agreement:.0%})")  # fmt: skip
        return "; ".join(parts)


@dataclass
class OutlierReport:
    results: list[VoterResult]  # every tested voter, most suspicious first
    untested: dict[str, int] = field(default_factory=dict)  # voter -> decisive votes, below min_votes
    rounds: int = 1
    alpha: float = DEFAULT_ALPHA
    correction: str = "holm"

    @property
    def flagged(self) -> list[VoterResult]:
        return [result for result in self.results if result.flagged]


# --- the math: plain numpy over arrays -------------------------------------------------------


def crowd_strengths(rows: list[VoteRow]) -> dict[str, float]:
    """Bradley-Terry strengths in logits (ties as half a win, both_bad as a tie)."""
    from arena.ratings import BattleCounts, BradleyTerry

    records = [{"system_a": r.system_a, "system_b": r.system_b, "outcome": r.outcome} for r in rows]
    if not records:
        return {}
    counts = BattleCounts.from_records(records).resolve_both_bad("tie")
    strengths = BradleyTerry(counts, l2=CROWD_L2).fit()[: counts.n_systems]
    return dict(zip(counts.systems, strengths.tolist()))


def score_test(a: np.ndarray, b: np.ndarray, a_won: np.ndarray, logit: np.ndarray) -> tuple[float, int]:
    """Score statistic and degrees of freedom for one voter (see the module docstring).

    a, b: shape (n,) system indices; a_won: shape (n,) 1.0 or 0.0; logit: shape (n,) the
    crowd's log-odds that a beats b.
    """
    systems, local = np.unique(np.concatenate([a, b]), return_inverse=True)
    n, k = len(a), len(systems)
    x = np.zeros((n, k + 1))  # shape (n, k + 1): a shift per system met, then sharpness
    x[np.arange(n), local[:n]] = 1.0
    x[np.arange(n), local[n:]] -= 1.0
    x[:, k] = logit
    p = np.clip(1.0 / (1.0 + np.exp(-logit)), P_FLOOR, 1 - P_FLOOR)
    u = x.T @ (a_won - p)  # shape (k + 1,)
    info = x.T @ (x * (p * (1 - p))[:, None])  # shape (k + 1, k + 1)
    eigenvalues, eigenvectors = np.linalg.eigh(info)
    # Shifts are only defined up to a constant (and beta is collinear with them when the
    # crowd's ratings are themselves a shift), so invert on the non-null space.
    keep = eigenvalues > eigenvalues.max() * 1e-9
    projected = eigenvectors[:, keep].T @ u
    return float(np.sum(projected**2 / eigenvalues[keep])), int(keep.sum())


CORRECTIONS = {"holm": "holm", "bh": "fdr_bh"}  # Duet's name -> statsmodels' method


def adjust(p_values: np.ndarray, method: str) -> np.ndarray:
    """Holm (family-wise error) or Benjamini-Hochberg (false discovery rate) adjusted p-values."""
    if method not in CORRECTIONS:
        raise ValueError(f"correction must be 'holm' or 'bh', got {method!r}")
    if len(p_values) == 0:
        return p_values
    from statsmodels.stats.multitest import multipletests  # seconds to import: only when screening

    return multipletests(p_values, method=CORRECTIONS[method])[1]


def _test_round(rows, strengths, min_votes) -> tuple[list[VoterResult], dict[str, int]]:
    from scipy.stats import chi2

    names = sorted(strengths)
    index = {name: i for i, name in enumerate(names)}
    s = np.array([strengths[name] for name in names])
    by_voter: dict[str, list[VoteRow]] = defaultdict(list)
    for row in rows:
        if row.outcome in ("a", "b") and row.system_a in index and row.system_b in index:
            by_voter[row.voter].append(row)
    results, untested = [], {}
    for voter, votes in by_voter.items():
        if len(votes) < min_votes:
            untested[voter] = len(votes)
            continue
        a = np.array([index[v.system_a] for v in votes])
        b = np.array([index[v.system_b] for v in votes])
        a_won = np.array([1.0 if v.outcome == "a" else 0.0 for v in votes])
        logit = s[a] - s[b]
        statistic, df = score_test(a, b, a_won, logit)
        p = 1.0 / (1.0 + np.exp(-logit))
        # The most lopsided system, for the reviewer: wins observed vs expected, as a z-score.
        best = ("", 0, 0.0, 0.0)
        for system in np.unique(np.concatenate([a, b])):
            in_a, in_b = a == system, b == system
            wins = float(a_won[in_a].sum() + (1 - a_won[in_b]).sum())
            expected = float(p[in_a].sum() + (1 - p[in_b]).sum())
            variance = float((p * (1 - p))[in_a | in_b].sum())
            z = (wins - expected) / np.sqrt(max(variance, 1e-12))
            if abs(z) > abs(best[3]):
                best = (names[system], int(wins), expected, z)
        favourite_won = np.where(logit >= 0, a_won, 1 - a_won)
        results.append(
            VoterResult(
                voter=voter, n_votes=len(votes), statistic=statistic, df=df,
                p_value=float(chi2.sf(statistic, df)) if df else 1.0,
                system=best[0], wins=best[1], expected_wins=best[2], z=float(best[3]),
                agreement=float(favourite_won.mean()), expected_agreement=float(np.maximum(p, 1 - p).mean()),
            )
        )  # fmt: skip
    return results, untested


def find_outliers(
    rows: Iterable[VoteRow],
    *,
    alpha: float = DEFAULT_ALPHA,
    min_votes: int = DEFAULT_MIN_VOTES,
    correction: str = "holm",
) -> OutlierReport:
    """Test every voter with at least `min_votes` decisive votes against the crowd."""
    from dataclasses import replace

    rows = list(rows)
    flagged: set[str] = set()
    for round_number in range(1, MAX_ROUNDS + 1):
        strengths = crowd_strengths([row for row in rows if row.voter not in flagged])
        results, untested = _test_round(rows, strengths, min_votes)
        adjusted = adjust(np.array([r.p_value for r in results]), correction)
        results = [
            replace(r, p_adjusted=float(q), flagged=bool(q < alpha)) for r, q in zip(results, adjusted)
        ]
        now_flagged = {r.voter for r in results if r.flagged}
        if now_flagged == flagged:
            break
        flagged = now_flagged
    results.sort(key=lambda r: (r.p_value, r.voter))
    return OutlierReport(results, untested, round_number, alpha, correction)


# --- Django: rows from the database, flags on judges -----------------------------------------


def vote_rows(arena, modality: str) -> list[VoteRow]:
    """The arena's battles of one modality as VoteRows (imported battles by judge name).
    Every battle, flagged voters' included: each voter is tested against everyone else."""
    from arena.models import Battle

    queryset = Battle.objects.filter(arena=arena, modality=modality).values_list(
        "judgment__judge_id", "judge_name", "system_a__name", "system_b__name", "outcome"
    )
    return [
        VoteRow(f"judge:{judge_id}" if judge_id else f"name:{name}", system_a, system_b, outcome)
        for judge_id, name, system_a, system_b, outcome in queryset.iterator(chunk_size=5000)
    ]


def mark_flagged(results: Iterable[VoterResult], *, by: str = "flag_outliers") -> int:
    """Flag the voters' judges for review, each with the test's reason (imported voters
    have no Judge row and are only listed). Returns how many judges were flagged."""
    reasons = {int(r.voter.split(":", 1)[1]): r.reason for r in results if r.voter.startswith("judge:")}
    return _set_flags(reasons, by=by)


def flag_judges(judges, *, reason: str, by: str) -> int:
    """Flag judges by hand (a reviewer in the admin). Returns how many were flagged."""
    return _set_flags({pk: reason for pk in judges.values_list("pk", flat=True)}, by=by)


def clear_flag(judge) -> None:
    """A reviewer found the voter honest: their judgments count again."""
    from arena.models import Judge

    clear_flags(Judge.objects.filter(pk=judge.pk))
    judge.flagged_at, judge.flag_reason, judge.flagged_by = None, "", ""


def clear_flags(judges) -> int:
    """Clear the flags of a queryset of judges; returns how many were flagged."""
    from django.db import transaction

    with transaction.atomic():
        ids = list(judges.select_for_update().filter(flagged_at__isnull=False).values_list("pk", flat=True))
        judges.model.objects.filter(pk__in=ids).update(flagged_at=None, flag_reason="", flagged_by="")
        _judges_changed(ids)
        _refresh_boards_on_commit(ids)
    return len(ids)


def _set_flags(reasons: dict[int, str], *, by: str) -> int:
    from django.db import transaction
    from django.utils import timezone

    from arena.models import Judge

    now = timezone.now()
    with transaction.atomic():
        flagged = [
            pk for pk, reason in reasons.items()
            if Judge.objects.filter(pk=pk).update(flagged_at=now, flag_reason=reason, flagged_by=by[:150])
        ]  # fmt: skip
        _judges_changed(flagged)
        _refresh_boards_on_commit(flagged)
    return len(flagged)


def _judges_changed(judge_ids: list[int]) -> None:
    """`.update()` sends no signal: tell every process's copies of voters' judges
    (arena.voting.voters keeps them ten minutes) that flags changed, once committed."""
    from arena import hotcache

    if judge_ids:
        hotcache.changed("arena.Judge", "arena.Judge:edited")


def _refresh_boards_on_commit(judge_ids: list[int]) -> None:
    """Queue a refresh of every arena the judges voted in, once the flags are committed, so
    the boards change without waiting for the next vote."""
    from django.conf import settings
    from django.db import transaction

    from arena.models import Arena

    if not judge_ids or not settings.EXCLUDE_FLAGGED_VOTERS:
        return

    def refresh():
        from arena.board.snapshots import request_refresh

        for arena in Arena.objects.filter(battles__judgment__judge_id__in=judge_ids).distinct():
            request_refresh(arena)

    transaction.on_commit(refresh)


def flagged_judges():
    from arena.models import Judge

    return Judge.objects.filter(flagged_at__isnull=False)


def exclude_flagged(queryset, judge_path: str):
    """Leave out rows whose judge is flagged: `exclude_flagged(Battle.objects.all(),
    "judgment__judge")`, `exclude_flagged(Judgment.objects.all(), "judge")`. Rows with no
    judge (imported battles) stay."""
    return queryset.exclude(**{f"{judge_path}__in": flagged_judges().values("pk")})

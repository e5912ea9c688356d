"""The arena's actions: the only functions that write judges, comparisons and judgments.

`check_vote` validates a vote and resolves what it refers to; `do_record_judgment` writes
it exactly once and announces it after the transaction commits.
"""

import hashlib
import random
from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.dispatch import Signal
from django.utils import timezone

from . import errors
from .models import (
    Comparison,
    ComparisonOrigin,
    Judge,
    JudgeKind,
    Judgment,
    Modality,
    Output,
    PromptOrigin,
    Verdict,
)

VOTE_TOKEN_SALT = "duet.arena.vote"

# Sent after the transaction that recorded a judgment commits; the leaderboard and the
# routing modules listen, so the arena never imports them.
judgment_recorded = Signal()  # kwargs: judgment


# --- judges -------------------------------------------------------------------------------


def judge_for_user(user) -> Judge:
    judge = Judge.objects.filter(user=user).first()
    if judge is not None:
        return judge
    try:
        with transaction.atomic():
            return Judge.objects.create(kind=JudgeKind.HUMAN, name=f"user-{user.pk}", user=user)
    except IntegrityError:  # created by a concurrent request of the same user
        return Judge.objects.get(user=user)


def judge_for_session(session_key: str) -> Judge:
    # The session key is a credential: store only a hash of it.
    name = "session-" + hashlib.sha256(session_key.encode()).hexdigest()[:32]
    judge, _ = Judge.objects.get_or_create(kind=JudgeKind.ANONYMOUS, name=name, version="")
    return judge


# --- matchmaking v1 -----------------------------------------------------------------------


# The open arena serves the shared prompt pool only: imported project data stays in its
# project, and voters' own live prompts are not shown to other voters.
POOL_ORIGINS = (PromptOrigin.SEED, PromptOrigin.API)


def _eligible_outputs(modality: str):
    queryset = Output.objects.filter(
        system__is_active=True, system__modality=modality, prompt__modality=modality,
        prompt__origin__in=POOL_ORIGINS, turn=0,
    )  # fmt: skip
    if modality == Modality.TEXT:
        return queryset.exclude(text="")
    return queryset.exclude(media="")


def _pending_comparison(judge: Judge, modality: str) -> Comparison | None:
    """An arena comparison served to this judge and not yet answered, if still votable."""
    since = timezone.now() - timezone.timedelta(seconds=settings.VOTE_TOKEN_MAX_AGE_SECONDS)
    return (
        Comparison.objects.filter(
            served_to=judge,
            origin=ComparisonOrigin.ARENA,
            prompt__modality=modality,
            created_at__gte=since,
            output_a__system__is_active=True,
            output_b__system__is_active=True,
        )
        .exclude(judgments__judge=judge)
        .select_related("prompt", "output_a", "output_b")
        .order_by("-created_at")
        .first()
    )


def _available_pairs(judge: Judge, modality: str) -> dict[tuple[int, int], list[tuple[int, int, int]]]:
    """For each pair of systems (lower id first), the (prompt, output, output) triples this
    judge has not judged yet."""
    judged_pairs = set(
        Judgment.objects.filter(judge=judge, comparison__prompt__modality=modality).values_list(
            "comparison__pair_key", flat=True
        )
    )
    by_prompt: dict[int, list[tuple[int, int]]] = {}
    for output_id, prompt_id, system_id in _eligible_outputs(modality).values_list("id", "prompt_id", "system_id"):
        by_prompt.setdefault(prompt_id, []).append((system_id, output_id))
    pairs: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for prompt_id, entries in by_prompt.items():
        entries.sort()
        for i, (system_i, output_i) in enumerate(entries):
            for system_j, output_j in entries[i + 1 :]:
                if system_i != system_j and Comparison.make_pair_key(output_i, output_j) not in judged_pairs:
                    pairs.setdefault((system_i, system_j), []).append((prompt_id, output_i, output_j))
    return pairs


def _choose_system_pair(pairs: list[tuple[int, int]], modality: str, rng: random.Random) -> tuple[int, int]:
    """Uniform over system pairs, or (DUET_MATCHMAKING=active) weighted toward the pairs
    whose order the current leaderboard is least sure of (arena.ratings.pair_weights)."""
    if settings.MATCHMAKING != "active" or len(pairs) == 1:
        return rng.choice(pairs)
    from .leaderboard import Scope, default_arena, latest_snapshot

    snapshot = latest_snapshot(default_arena(), Scope(modality))
    if snapshot is None:
        return rng.choice(pairs)
    import numpy as np

    from .models import System
    from .ratings import MatchState, pair_weights

    system_ids = sorted({system for pair in pairs for system in pair})
    names = dict(System.objects.filter(id__in=system_ids).values_list("id", "name"))
    rows = {row["system"]: row for row in snapshot.payload.get("systems", [])}
    nan = float("nan")

    def column(key, default):
        return np.array([(rows.get(names[s]) or {}).get(key, default) for s in system_ids], dtype=float)

    ci_low, ci_high = column("ci_low", nan), column("ci_high", nan)
    state = MatchState.from_intervals(
        column("rating", 1000.0),
        np.where(np.isnan(ci_low), nan, ci_low),
        np.where(np.isnan(ci_high), nan, ci_high),
        column("votes", 0).astype(np.int64),
        # Systems not on the board yet sit in a component of their own.
        np.array([(rows.get(names[s]) or {}).get("component", 1000 + k) for k, s in enumerate(system_ids)]),
    )
    position = {system: k for k, system in enumerate(system_ids)}
    allowed = {(position[i], position[j]) for i, j in pairs}
    excluded = {
        (i, j) for i in range(len(system_ids)) for j in range(i + 1, len(system_ids)) if (i, j) not in allowed
    }
    weights = pair_weights(state, exclude_pairs=excluded)
    flat = np.random.default_rng(rng.getrandbits(64)).choice(weights.size, p=weights.ravel())
    i, j = divmod(int(flat), weights.shape[1])
    return system_ids[i], system_ids[j]


def next_comparison(judge: Judge, modality: str = Modality.TEXT, rng: random.Random | None = None) -> Comparison:
    """Serve the judge one comparison: a prompt and outputs of two different systems, random
    sides, never a pair of outputs this judge has already judged.

    An unanswered comparison served earlier is served again, so reloading the page does not
    let a voter pick which systems they see.
    """
    if modality not in Modality.values:
        raise errors.InvalidInput(f"unknown modality {modality!r}; expected one of {', '.join(Modality.values)}")
    pending = _pending_comparison(judge, modality)
    if pending is not None:
        return pending
    rng = rng or random.SystemRandom()
    pairs = _available_pairs(judge, modality)
    if not pairs:
        has_any = (
            _eligible_outputs(modality).values("prompt_id")
            .annotate(n_systems=Count("system_id", distinct=True)).filter(n_systems__gte=2).exists()
        )  # fmt: skip
        if not has_any:
            raise errors.NothingToCompare(
                f"No {modality} comparisons are available yet: no prompt has outputs from two active systems "
                "(the worker may still be generating them; try again shortly)."
            )
        raise errors.NothingToCompare(
            f"There is nothing left for you to compare in {modality}: you have judged every available pair."
        )
    system_pair = _choose_system_pair(sorted(pairs), modality, rng)
    prompt_id, first, second = rng.choice(pairs[system_pair])
    if rng.random() < 0.5:
        first, second = second, first
    return Comparison.objects.create(
        prompt_id=prompt_id,
        output_a_id=first,
        output_b_id=second,
        origin=ComparisonOrigin.ARENA,
        served_to=judge,
    )


def issue_vote_token(comparison: Comparison, judge: Judge) -> str:
    return signing.dumps({"c": comparison.public_id.hex, "j": judge.pk}, salt=VOTE_TOKEN_SALT, compress=True)


# --- votes --------------------------------------------------------------------------------


@dataclass
class Vote:
    comparison: Comparison
    judge: Judge
    verdict: str
    time_to_vote_ms: int | None = None
    play_events: list = field(default_factory=list)
    aspects: dict = field(default_factory=dict)
    rationale: str = ""
    metadata: dict = field(default_factory=dict)


PLAY_EVENT_TYPES = frozenset({"play", "pause", "ended", "vote"})
MAX_PLAY_EVENTS = 500


def _parse_play_events(raw) -> list[dict]:
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise errors.InvalidInput("play_events must be a list of {side, type, position, t} objects")
    if len(raw) > MAX_PLAY_EVENTS:
        raise errors.InvalidInput(f"play_events has {len(raw)} entries; at most {MAX_PLAY_EVENTS} are accepted")
    events = []
    for index, event in enumerate(raw):
        if not isinstance(event, dict):
            raise errors.InvalidInput(f"play_events[{index}] must be an object")
        side, kind = event.get("side"), event.get("type")
        if side not in ("a", "b"):
            raise errors.InvalidInput(f"play_events[{index}].side must be 'a' or 'b'")
        if kind not in PLAY_EVENT_TYPES:
            raise errors.InvalidInput(
                f"play_events[{index}].type must be one of {', '.join(sorted(PLAY_EVENT_TYPES))}"
            )
        try:
            position = float(event.get("position", 0))
            elapsed = float(event.get("t", 0))
        except (TypeError, ValueError):
            raise errors.InvalidInput(f"play_events[{index}].position and .t must be numbers") from None
        if not (0 <= position < 1e6 and 0 <= elapsed < 1e9):
            raise errors.InvalidInput(f"play_events[{index}] has an out-of-range position or time")
        events.append({"side": side, "type": kind, "position": round(position, 3), "t": round(elapsed, 1)})
    return events


def played_seconds(events: list[dict], side: str) -> float:
    """Seconds of a track heard, from play → pause/ended/vote intervals of its positions."""
    total, started_at = 0.0, None
    for event in sorted((e for e in events if e["side"] == side), key=lambda e: e["t"]):
        if event["type"] == "play":
            started_at = event["position"]
        elif started_at is not None:
            total += max(0.0, event["position"] - started_at)
            started_at = None
    return total


def _check_audio_gate(comparison: Comparison, events: list[dict]) -> None:
    required = settings.AUDIO_MIN_PLAY_SECONDS
    for side, output in (("a", comparison.output_a), ("b", comparison.output_b)):
        duration = float(output.metadata.get("duration", 0) or 0)
        # A track shorter than the minimum only has to be heard to its end.
        needed = min(required, duration - 0.25) if duration > 0 else required
        heard = played_seconds(events, side)
        if heard < needed:
            raise errors.AudioGateNotMet(
                f"Listen before voting: track {side.upper()} played {heard:.1f} s of the required {needed:.1f} s"
            )


def check_vote(
    *,
    token: str | None,
    judge: Judge,
    verdict,
    time_to_vote_ms=None,
    play_events=None,
) -> Vote:
    if not token:
        raise errors.InvalidVoteToken("token is required: load a comparison first, then vote with its token")
    try:
        payload = signing.loads(token, salt=VOTE_TOKEN_SALT, max_age=settings.VOTE_TOKEN_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise errors.ExpiredVoteToken("vote token has expired; load a new comparison") from None
    except signing.BadSignature:
        raise errors.InvalidVoteToken("vote token is invalid (bad signature)") from None
    if not isinstance(payload, dict) or "c" not in payload or "j" not in payload:
        raise errors.InvalidVoteToken("vote token is invalid (malformed)")
    if payload["j"] != judge.pk:
        raise errors.ForeignVoteToken("this vote token was issued to another voter")
    comparison = (
        Comparison.objects.select_related("prompt", "output_a__system", "output_b__system")
        .filter(public_id=payload["c"])
        .first()
    )
    if comparison is None:
        raise errors.NotFound(f"comparison {payload['c']} does not exist")
    if verdict not in Verdict.values:
        raise errors.InvalidInput(f"verdict must be one of {', '.join(Verdict.values)}; got {verdict!r}")
    if time_to_vote_ms is not None:
        try:
            time_to_vote_ms = int(time_to_vote_ms)
        except (TypeError, ValueError):
            raise errors.InvalidInput("time_to_vote_ms must be a whole number of milliseconds") from None
        if not 0 <= time_to_vote_ms <= 7 * 24 * 3600 * 1000:
            raise errors.InvalidInput("time_to_vote_ms is out of range")
    events = _parse_play_events(play_events)
    if comparison.modality == Modality.AUDIO:
        _check_audio_gate(comparison, events)
    return Vote(
        comparison=comparison, judge=judge, verdict=verdict, time_to_vote_ms=time_to_vote_ms, play_events=events
    )


def do_record_judgment(vote: Vote) -> tuple[Judgment, bool]:
    """Record the vote once. Returns (judgment, created); a repeated vote returns the
    judgment recorded first and counts nothing twice."""
    existing = Judgment.objects.filter(
        comparison=vote.comparison, judge=vote.judge, supersedes__isnull=True
    ).first()
    if existing is not None:
        return existing, False
    from .leaderboard import record_battle, request_refresh

    try:
        with transaction.atomic():
            judgment = Judgment.objects.create(
                comparison=vote.comparison,
                judge=vote.judge,
                verdict=vote.verdict,
                time_to_vote_ms=vote.time_to_vote_ms,
                play_events=vote.play_events,
                aspects=vote.aspects,
                rationale=vote.rationale,
                metadata=vote.metadata,
            )
            battle = record_battle(judgment)
            if battle is not None:
                transaction.on_commit(lambda: request_refresh(battle.arena))
            transaction.on_commit(lambda: judgment_recorded.send(sender=Judgment, judgment=judgment))
    except IntegrityError:
        # A concurrent duplicate won the unique constraint; it is the first judgment.
        return Judgment.objects.get(comparison=vote.comparison, judge=vote.judge, supersedes__isnull=True), False
    return judgment, True


def reveal(comparison: Comparison) -> dict:
    """The identities behind A and B, shown only after the vote."""

    def describe(output: Output) -> dict:
        system = output.system
        return {
            "system": system.name,
            "provider": system.get_provider_display(),
            "demo": system.is_demo,
            "version": system.version,
        }

    return {"a": describe(comparison.output_a), "b": describe(comparison.output_b)}

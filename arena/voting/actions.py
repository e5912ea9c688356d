"""The arena's actions: the only functions that write judges and comparisons, and the vote.

`check_vote` validates a vote and resolves what it refers to; `do_record_judgment` hands
it to the one writer of judgments (`arena.judgments`), which writes it exactly once and
announces it after the transaction commits.
"""

import os
import random
import uuid
from dataclasses import dataclass, field
from functools import partial

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from arena import errors
from arena.hotcache import Memo
from arena.judges import session_judge_name
from arena.judgments import record_judgment
from arena.models import (
    Comparison,
    ComparisonOrigin,
    Judge,
    JudgeKind,
    Judgment,
    Modality,
    Output,
    Prompt,
    Verdict,
)
from arena import fastpath as rows
from arena.voting import matchmaking
from arena.voting.categories import check_category

VOTE_TOKEN_SALT = "duet.arena.vote"


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
    judge, _ = Judge.objects.get_or_create(kind=JudgeKind.ANONYMOUS, name=session_judge_name(session_key), version="")
    return judge


# --- serving comparisons -----------------------------------------------------------------


def _open(latest: tuple[Comparison, bool] | None, modality: str) -> Comparison | None:
    """The served comparison if it is still votable: not answered, its token not expired
    (both checked by the query), both its systems still active."""
    if latest is None or not latest[1]:
        return None
    comparison = latest[0]
    if not matchmaking.still_eligible(modality, comparison.output_a_id, comparison.output_b_id):
        return None
    return comparison


def _served_since() -> timezone.datetime:
    return timezone.now() - timezone.timedelta(seconds=settings.VOTE_TOKEN_MAX_AGE_SECONDS)


def next_comparison(judge: Judge, modality: str = Modality.TEXT, rng: random.Random | None = None) -> Comparison:
    """Serve the judge one comparison: a prompt and outputs of two different systems, random
    sides, never a pair of outputs this judge has already judged (arena.voting.matchmaking).

    An unanswered comparison served earlier is served again, so reloading the page does not
    let a voter pick which systems they see.
    """
    if modality not in Modality.values:
        raise errors.InvalidInput(f"unknown modality {modality!r}; expected one of {', '.join(Modality.values)}")
    # A generator seeded from 128 fresh bits of the OS's entropy for this request alone:
    # as unpredictable to a voter as SystemRandom, without a system call per draw.
    rng = rng or random.Random(os.urandom(16))
    # Candidates are drawn before knowing whether one is pending, so that one statement
    # answers both questions (a vote is followed by a new comparison every time).
    drawn = matchmaking.candidates(modality, rng)
    keys = [Comparison.make_pair_key(first, second) for _, first, second in drawn]
    latest, judged = rows.served_and_judged(judge.pk, modality, _served_since(), keys)
    pending = _open(latest, modality)
    if pending is not None:
        return pending
    chosen = matchmaking.choose(judge, modality, drawn, judged, rng)
    if chosen is None:
        has_any = (
            matchmaking.eligible_outputs(modality).values("prompt_id")
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
    prompt_id, first, second = chosen
    if rng.random() < 0.5:
        first, second = second, first
    return rows.insert_comparison(
        prompt_id=prompt_id, output_a_id=first, output_b_id=second, origin=ComparisonOrigin.ARENA, served_to=judge
    )


def issue_vote_token(comparison: Comparison, judge: Judge) -> str:
    """A signed token for one vote on this comparison by this judge. It carries the
    comparison's own columns ("k": id, prompt, outputs, origin: none of them ever
    changes), so the vote does not read the comparison back (`check_vote`)."""
    facts = [comparison.pk, comparison.prompt_id, comparison.output_a_id, comparison.output_b_id, comparison.origin]
    return signing.dumps({"c": comparison.public_id.hex, "j": judge.pk, "k": facts}, salt=VOTE_TOKEN_SALT,
                         compress=True)  # fmt: skip


# What a vote reads of a comparison's prompt and outputs, per process (arena.hotcache):
# a prompt's modality and categories, an output's system and metadata. They are edited
# rarely if ever, and every edit clears them: kept as long as rendered outputs are.
_vote_prompts = Memo("prompts as votes read them", ttl=600, invalidated_by=("arena.Prompt:edited",))
_vote_outputs = Memo("outputs as votes read them", ttl=600, invalidated_by=("arena.Output:edited",))
_TOKEN_COMPARISON_FIELDS = ["id", "public_id", "prompt_id", "output_a_id", "output_b_id", "origin", "pair_key"]


def _comparison_from_token(payload: dict) -> Comparison | None:
    """The comparison a token names, from the columns it carries (signed by us, so as
    trustworthy as the id), with its prompt and outputs from this process's copies: no
    statement. None when the prompt or an output no longer exists; a comparison deleted
    since is caught by the judgment's foreign key (`do_record_judgment`)."""
    pk, prompt_id, output_a_id, output_b_id, origin = payload["k"]
    comparison = Comparison.from_db(
        transaction.get_connection().alias, _TOKEN_COMPARISON_FIELDS,
        [int(pk), uuid.UUID(payload["c"]), int(prompt_id), int(output_a_id), int(output_b_id), str(origin),
         Comparison.make_pair_key(int(output_a_id), int(output_b_id))],
    )  # fmt: skip
    # A process that has none of them reads all three in one statement; one that lacks
    # only some, or finds the comparison gone (its judgment's foreign key will say so),
    # reads those one by one.
    loaded = []

    def whole():
        if not loaded:
            loaded.append(rows.comparison_for_vote(comparison.public_id))
        return loaded[0]

    def load_prompt():
        found = whole()
        if found is not None:
            return found.prompt
        return Prompt.objects.only("modality", "categories").filter(pk=comparison.prompt_id).first()

    def load_output(side: str, output_id: int):
        found = whole()
        if found is not None and getattr(found, f"{side}_id") == output_id:
            return getattr(found, side)
        return Output.objects.only(*rows.OUTPUT_FIELDS).filter(pk=output_id).first()

    prompt = _vote_prompts.get(comparison.prompt_id, load_prompt)
    outputs = [
        _vote_outputs.get(output_id, partial(load_output, side, output_id))
        for side, output_id in (("output_a", comparison.output_a_id), ("output_b", comparison.output_b_id))
    ]
    if prompt is None or None in outputs:
        return None
    comparison._state.fields_cache.update(prompt=prompt, output_a=outputs[0], output_b=outputs[1])
    return comparison


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
    category=None,
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
    try:
        # Tokens issued before they carried the comparison ("k") read it back.
        comparison = _comparison_from_token(payload) if "k" in payload else rows.comparison_for_vote(payload["c"])
    except (ValueError, TypeError):  # only a token signed with our key gets here
        raise errors.InvalidVoteToken("vote token is invalid (malformed)") from None
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
    # The voter's tag of the comparison's category; it outranks the prompt's own category
    # on the battle (arena.board.snapshots.battle_for). Checked against a per-process copy
    # of the arena's categories: no statement on the vote path.
    tagged = check_category(category, comparison.modality)
    return Vote(
        comparison=comparison, judge=judge, verdict=verdict, time_to_vote_ms=time_to_vote_ms, play_events=events,
        metadata={"category": tagged} if tagged else {},
    )  # fmt: skip


def do_record_judgment(vote: Vote) -> tuple[Judgment, bool]:
    """Record the vote once (`arena.judgments.record_judgment`: the judgment, its battle,
    the event). Returns (judgment, created); a repeated vote returns the judgment
    recorded first and counts nothing twice."""
    return record_judgment(
        vote.comparison, vote.judge, vote.verdict, time_to_vote_ms=vote.time_to_vote_ms,
        play_events=vote.play_events, aspects=vote.aspects, rationale=vote.rationale, metadata=vote.metadata,
    )  # fmt: skip


_identities = Memo("system identities", invalidated_by=("arena.System:edited",))


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

    return {
        side: dict(_identities.get(output.system_id, lambda output=output: describe(output)))
        for side, output in (("a", comparison.output_a), ("b", comparison.output_b))
    }

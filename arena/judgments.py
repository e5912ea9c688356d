"""The one writer of judgments. Every judgment, whoever casts it (an arena vote, a live
battle, an annotator's submission, a reviewer's correction, an import, a routed judge),
is written here and nowhere else (tests/arena/test_judgment_writer.py checks the code):

    record_judgment(comparison, judge, verdict, **fields) -> (judgment, created)
    record_judgments([NewJudgment(...), ...])              -> the judgments written

Both write the board's battle where the comparison belongs to the arena (`battle_for`, in
the same transaction: a judgment and its battle exist together or not at all) and send
`arena.events.judgment_recorded` once the transaction commits: one event per call, with
every judgment that call wrote, and none for a repeat that wrote nothing. What follows a
judgment (the board's refresh, routing's calibration, webhooks) are that event's receivers.

One original judgment per comparison and judge (a unique constraint): a repeat writes
nothing and counts nothing twice. A correction (`supersedes`) is a new judgment; the
judgment it supersedes loses its battle, the correction brings its own.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from . import errors
from . import fastpath as rows
from .events import judgment_recorded, send_on_commit
from .board.snapshots import ARENA_ORIGINS, battle_for
from .models import Battle, Comparison, Judge, Judgment

# Rows per INSERT in a batch, and ids per IN (...) when checking what is there already:
# SQLite's default limit is 999 variables per statement in old builds; 500 stays under it.
BATCH = 500


@dataclass
class NewJudgment:
    """A judgment to write. `comparison`: the instance (the arena's, with its prompt and
    outputs loaded: its battle is built without reading them back) or its primary key."""

    comparison: Comparison | int
    judge: Judge
    verdict: str
    aspects: dict = field(default_factory=dict)
    rationale: str = ""
    confidence: float | None = None
    time_to_vote_ms: int | None = None
    play_events: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    supersedes: Judgment | None = None

    @property
    def comparison_id(self) -> int:
        return self.comparison.pk if isinstance(self.comparison, Comparison) else int(self.comparison)

    def build(self) -> Judgment:
        where = {"comparison": self.comparison} if isinstance(self.comparison, Comparison) else {
            "comparison_id": int(self.comparison)}  # fmt: skip
        return Judgment(
            **where, judge=self.judge, verdict=self.verdict, aspects=self.aspects, rationale=self.rationale,
            confidence=self.confidence, time_to_vote_ms=self.time_to_vote_ms, play_events=self.play_events,
            metadata=self.metadata, supersedes=self.supersedes,
        )  # fmt: skip


def record_judgment(comparison: Comparison | int, judge: Judge, verdict: str, **fields) -> tuple[Judgment, bool]:
    """Write one judgment. Returns (judgment, created): a repeat of an original judgment
    (same comparison and judge) returns the one recorded first, created False. The unique
    constraint decides, so nothing is read before the write (a repeat is rare; a read
    would cost every vote).

    The vote's fast path: on PostgreSQL, outside a transaction, the judgment and its
    battle are one statement (`rows.insert_linked`), atomic by itself; otherwise they are
    written in a transaction (a savepoint inside the caller's, so a duplicate does not
    spoil it). A correction whose original is already superseded raises IntegrityError."""
    new = NewJudgment(comparison, judge, verdict, **fields)
    judgment = new.build()
    connection = transaction.get_connection()
    one_statement = connection.vendor == "postgresql" and not connection.in_atomic_block and new.supersedes is None
    try:
        with nullcontext() if one_statement else transaction.atomic():
            if new.supersedes is not None:
                Battle.objects.filter(judgment=new.supersedes).delete()
            battle = rows.insert_linked(judgment, battle_for, "judgment")
            # Outside a transaction (autocommit) on_commit runs at once: the statement has committed.
            send_on_commit(judgment_recorded, Judgment, judgments=[judgment], battles=[battle] if battle else [])
    except IntegrityError:
        if new.supersedes is not None:
            raise
        # A concurrent duplicate won the unique constraint; it is the first judgment. Or
        # the comparison was deleted after its token was issued (the foreign key).
        first = Judgment.objects.filter(comparison_id=new.comparison_id, judge=judge, supersedes__isnull=True).first()
        if first is None:
            public_id = getattr(new.comparison, "public_id", new.comparison_id)
            raise errors.NotFound(f"comparison {public_id} does not exist") from None
        return first, False
    return judgment, True


def record_judgments(batch: list[NewJudgment]) -> list[Judgment]:
    """Write a batch in one transaction, with the battles of those on arena comparisons,
    and announce them in one event. An original judgment whose (comparison, judge)
    already has one, or comes twice in the batch, is skipped (also when a concurrent
    writer recorded it while this one ran); a correction whose original is already
    superseded raises IntegrityError. Returns the judgments written, in batch order."""
    if not batch:
        return []
    with transaction.atomic():
        fresh = _not_recorded_yet(batch)
        judgments = [new.build() for new in fresh]
        try:
            with transaction.atomic():
                Judgment.objects.bulk_create(judgments, batch_size=BATCH)
        except IntegrityError:
            judgments = _one_at_a_time(fresh)
        superseded = [new.supersedes.pk for new in fresh if new.supersedes is not None]
        if superseded:
            Battle.objects.filter(judgment_id__in=superseded).delete()
        battles = [battle for battle in map(battle_for, _on_arena_comparisons(judgments)) if battle is not None]
        Battle.objects.bulk_create(battles, batch_size=BATCH)
        if judgments:
            send_on_commit(judgment_recorded, Judgment, judgments=judgments, battles=battles)
    return judgments


def _not_recorded_yet(batch: list[NewJudgment]) -> list[NewJudgment]:
    originals = [new for new in batch if new.supersedes is None]
    comparison_ids = sorted({new.comparison_id for new in originals})
    seen = set()
    for start in range(0, len(comparison_ids), BATCH):
        seen.update(
            Judgment.objects.filter(
                comparison_id__in=comparison_ids[start : start + BATCH], supersedes__isnull=True
            ).values_list("comparison_id", "judge_id")
        )
    fresh = []
    for new in batch:
        if new.supersedes is None:
            key = (new.comparison_id, new.judge.pk)
            if key in seen:
                continue
            seen.add(key)
        fresh.append(new)
    return fresh


def _one_at_a_time(fresh: list[NewJudgment]) -> list[Judgment]:
    """After a batch INSERT lost a race: each judgment in its own savepoint, skipping the
    originals a concurrent writer recorded first."""
    written = []
    for new in fresh:
        judgment = new.build()
        try:
            with transaction.atomic():
                judgment.save(force_insert=True)
        except IntegrityError:
            if new.supersedes is not None:
                raise
            continue
        written.append(judgment)
    return written


def _on_arena_comparisons(judgments: list[Judgment]) -> list[Judgment]:
    """The judgments on arena comparisons, their comparison loaded as `battle_for` reads it
    (prompt and outputs); the others have no battle and cost no read of their comparison."""
    unloaded = sorted({j.comparison_id for j in judgments if "comparison" not in j._state.fields_cache})
    loaded = {}
    for start in range(0, len(unloaded), BATCH):
        loaded.update(
            Comparison.objects.filter(pk__in=unloaded[start : start + BATCH], origin__in=ARENA_ORIGINS)
            .select_related("prompt", "output_a", "output_b").in_bulk()
        )  # fmt: skip
    chosen = []
    for judgment in judgments:
        if judgment.comparison_id in loaded:
            judgment.comparison = loaded[judgment.comparison_id]
        elif "comparison" not in judgment._state.fields_cache or judgment.comparison.origin not in ARENA_ORIGINS:
            continue
        chosen.append(judgment)
    return chosen

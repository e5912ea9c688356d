"""Leaderboards in the product: battles from the database, snapshots, debounced refresh.

The math lives in `arena.ratings` (no Django); this module turns Battle rows into its
inputs — aggregated by the database, so a refresh costs the same at a thousand votes as
at a million — and stores the results as snapshots the pages and the API read.
"""

import datetime
import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from arena import ratings
from arena.board.battle_logs import BattleLog, describe_skipped
from arena.hotcache import Memo
from arena.models import (
    Arena,
    Battle,
    BattleImport,
    BattleSource,
    ComparisonOrigin,
    Judgment,
    LeaderboardSnapshot,
    Modality,
    Output,
)
from arena.outputs.rendered import rendered
from arena import fastpath as rows

logger = logging.getLogger(__name__)

ARENA_ORIGINS = (ComparisonOrigin.ARENA, ComparisonOrigin.LIVE)
# A refresh request older than this with no snapshot since is assumed lost (broker down
# when it was queued, worker killed) and is queued again by the next vote.
STALE_REFRESH_SECONDS = 30
SNAPSHOTS_KEPT_PER_SCOPE = 20
# The payload entry that holds matchmaking's state (`ratings.MatchState.to_dict`).
MATCHMAKING_KEY = "matchmaking"


_arenas: Memo[Arena] = Memo("default arena", invalidated_by=("arena.Arena",))
_styles: Memo[dict] = Memo("output styles", ttl=600, invalidated_by=("arena.Output:edited",))


def default_arena() -> Arena:
    def get_or_create():
        return Arena.objects.get_or_create(name=settings.DEFAULT_ARENA)[0]

    return _arenas.get(settings.DEFAULT_ARENA, get_or_create)


def output_style(output: Output) -> dict[str, float]:
    # Counting markdown features costs about as much as the INSERT it goes into: counted
    # once per output and kept on its row (arena.outputs.rendered), copied per process.
    return _styles.get(output.pk, lambda: rendered(output)["style"])


def battle_for(judgment: Judgment) -> Battle | None:
    """The battle (unsaved) a human vote on an arena comparison stands for, or None."""
    comparison = judgment.comparison
    if comparison.origin not in ARENA_ORIGINS or not judgment.judge.is_human:
        return None
    output_a, output_b = comparison.output_a, comparison.output_b
    modality = comparison.prompt.modality
    return Battle(
        arena=default_arena(),
        system_a_id=output_a.system_id,
        system_b_id=output_b.system_id,
        outcome=judgment.verdict,
        modality=modality,
        # The category the voter tagged while voting, else the prompt's first.
        category=judgment.metadata.get("category") or (comparison.prompt.categories or [""])[0],
        anonymous=not judgment.metadata.get("identity_leak", False),
        source=BattleSource.ARENA,
        judge_name=str(judgment.judge),
        judgment=judgment,
        style={"a": output_style(output_a), "b": output_style(output_b)} if modality == Modality.TEXT else None,
        tstamp=judgment.created_at,
    )


def record_battle(judgment: Judgment) -> Battle | None:
    """Save the battle a saved judgment stands for; call it inside the transaction that
    wrote the judgment, so the two exist together or not at all."""
    from arena.fastpath import insert_battle_row

    battle = battle_for(judgment)
    return None if battle is None else insert_battle_row.save(battle)


# --- refresh --------------------------------------------------------------------------------


# The longest a refresh waits for its predecessor's pacing: below STALE_REFRESH_SECONDS,
# so a claim waiting that long is not taken for a lost one.
REFRESH_PAUSE_CAP_SECONDS = 20.0
_NOT_READ = object()


def refresh_countdown(not_before: datetime.datetime | None, now: datetime.datetime) -> float:
    """Seconds a refresh queued now waits: the debounce, or longer while the last refresh's
    pacing (`Arena.refresh_not_before`) holds, up to REFRESH_PAUSE_CAP_SECONDS."""
    wait = settings.LEADERBOARD_DEBOUNCE_SECONDS
    if not_before is not None:
        wait = max(wait, min((not_before - now).total_seconds(), REFRESH_PAUSE_CAP_SECONDS))
    return wait


def request_refresh(arena: Arena, not_before=_NOT_READ) -> bool:
    """Queue one refresh for a burst of votes. Returns True when a task was queued.
    `not_before`: the arena's `refresh_not_before`, where the caller has read it."""
    now = timezone.now()
    stale = now - timezone.timedelta(seconds=STALE_REFRESH_SECONDS)
    claimed = Arena.objects.filter(
        Q(refresh_requested_at__isnull=True) | Q(refresh_requested_at__lt=stale), pk=arena.pk
    ).update(refresh_requested_at=now)
    if not claimed:
        return False
    if not_before is _NOT_READ:
        not_before = Arena.objects.filter(pk=arena.pk).values_list("refresh_not_before", flat=True).first()
    try:
        refresh_leaderboards.apply_async((arena.pk,), countdown=refresh_countdown(not_before, now))
    except Exception:  # noqa: BLE001 - broker down: the vote stands; a later vote re-queues
        logger.exception("could not queue a leaderboard refresh for %s; will retry on a later vote", arena)
        Arena.objects.filter(pk=arena.pk, refresh_requested_at=now).update(refresh_requested_at=None)
        return False
    return True


def request_refresh_after_vote(arena: Arena) -> bool:
    """`request_refresh` for the vote path, where a claim per vote would cost a write.

    A claimed refresh starts no earlier than its claim plus the debounce, takes the claim
    when it starts, and reads the battles after; so a vote committed while a claim stands
    is in it, and asks nothing. Otherwise a new claim, once the last one has been taken
    by its task (or is stale). The claim lives in the arena's row, which every process on
    every host reads (one small read). Called by the board's receiver of
    `judgment_recorded` (`arena.receivers`), after the vote's transaction commits."""
    claimed_at, not_before = rows.refresh_state(arena.pk)
    if claimed_at is not None and claimed_at > timezone.now() - timezone.timedelta(seconds=STALE_REFRESH_SECONDS):
        return False
    return request_refresh(arena, not_before)


@dataclass(frozen=True)
class Scope:
    modality: str
    category: str = ""
    style_control: bool = False
    anonymous_only: bool = True

    def snapshot_fields(self) -> dict:
        """The LeaderboardSnapshot columns a board of this scope is stored and found by."""
        return asdict(self)


def battles_for(arena: Arena, scope: Scope):
    queryset = Battle.objects.filter(arena=arena, modality=scope.modality)
    if scope.category:
        queryset = queryset.filter(category=scope.category)
    if scope.anonymous_only:
        queryset = queryset.filter(anonymous=True)
    if settings.EXCLUDE_FLAGGED_VOTERS:
        # A subquery over the flagged voters' judgments (few) rather than a join of every
        # battle to its judgment; imported battles have no judgment and always stay.
        flagged = Judgment.objects.filter(judge__flagged_at__isnull=False).values("pk")
        queryset = queryset.exclude(judgment_id__in=flagged)
    return queryset


def battle_counts(queryset, style: bool = False):
    """Aggregate battles for the rating engine: BattleCounts from a GROUP BY, or, with
    style control, per-battle rows with their style counts."""
    if style:
        rows = queryset.values_list("system_a__name", "system_b__name", "outcome", "weight", "style")
        records = [
            {"system_a": a, "system_b": b, "outcome": o, "weight": w, "style_a": s["a"], "style_b": s["b"]}
            for a, b, o, w, s in rows.iterator(chunk_size=5000)
            if s
        ]
        return ratings.Battles.from_records(records, style_features=ratings.TEXT_STYLE_FEATURES).aggregate()
    grouped = list(
        queryset.values_list("system_a__name", "system_b__name", "outcome").annotate(
            n=Count("id"), w=Sum("weight"), w2=Sum(F("weight") * F("weight"))
        )
    )
    return counts_from_aggregates(grouped)


FLIPPED = {"a": "b", "b": "a", "tie": "tie", "both_bad": "both_bad"}


def counts_from_aggregates(rows) -> "ratings.BattleCounts":
    """BattleCounts from rows (system_a, system_b, outcome, count, weight sum, weight² sum)
    already grouped by the database. Rows are turned so a < b (flipping the outcome) and
    a pair grouped once per orientation is merged into one row."""
    systems = sorted({row[0] for row in rows} | {row[1] for row in rows})
    index = {name: i for i, name in enumerate(systems)}
    merged: dict[tuple[int, int, int], list[float]] = {}
    for name_a, name_b, verdict, n, w, w2 in rows:
        i, j = index[name_a], index[name_b]
        if i > j:
            i, j, verdict = j, i, FLIPPED[verdict]
        totals = merged.setdefault((i, j, int(ratings.OUTCOME_CODES[verdict])), [0, 0.0, 0.0])
        totals[0] += n
        totals[1] += w
        totals[2] += w2
    keys = list(merged)
    values = np.array([merged[key] for key in keys], dtype=np.float64).reshape(-1, 3)
    keys = np.array(keys, dtype=np.int64).reshape(-1, 3)
    return ratings.BattleCounts(
        tuple(systems),
        keys[:, 0],
        keys[:, 1],
        keys[:, 2].astype(np.int8),
        values[:, 0].astype(np.int64),
        values[:, 1],
        values[:, 2],
    )


def _matrices(counts, board) -> dict:
    order = [row.system for row in board.systems]
    index = [counts.systems.index(name) for name in order]

    def reorder(matrix):
        matrix = np.asarray(matrix, dtype=float)[np.ix_(index, index)]
        return [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in matrix]

    return {
        "systems": order,
        "battle_counts": reorder(ratings.battle_count_matrix(counts)),
        "win_rates": reorder(ratings.win_rate_matrix(counts)),
        "predicted_win_rates": [
            [None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in board.predicted_win_rates()
        ],
    }


def compute_board(counts, *, method="bt", ci=None, rounds=None, style_control=False, both_bad="tie", seed=0):
    return ratings.compute_leaderboard(
        counts,
        method=method,
        ci=ci or settings.LEADERBOARD_CI,
        rounds=rounds or settings.LEADERBOARD_BOOTSTRAP_ROUNDS,
        style_control=style_control,
        both_bad=both_bad,
        min_votes=settings.LEADERBOARD_MIN_VOTES,
        seed=seed,
    )


def compute_snapshot(arena: Arena, scope: Scope) -> LeaderboardSnapshot | None:
    queryset = battles_for(arena, scope)
    counts = battle_counts(queryset, style=scope.style_control)
    if counts.n_battles == 0:
        return None
    board = compute_board(counts, style_control=scope.style_control)
    payload = {**board.to_dict(), "matrices": _matrices(counts.without_style(), board)}
    payload["warnings"] = [*board.warnings, *import_notes(arena, scope.modality)]
    if not scope.style_control:
        # What active matchmaking weighs pairs by: a fit with a weak prior (finite from the
        # first vote) and its full covariance, so a vote's effect on every other pair's
        # order is seen (the board's intervals alone treat systems as independent). One
        # more fit of a few milliseconds; not part of the board's API answer.
        payload[MATCHMAKING_KEY] = ratings.MatchState.from_counts(counts).to_dict()
    return LeaderboardSnapshot.objects.create(
        arena=arena,
        **scope.snapshot_fields(),
        method=board.method,
        ci=board.ci,
        n_battles=counts.n_battles,
        payload=payload,
    )


def scopes_for(arena: Arena) -> list[Scope]:
    scopes = []
    modalities = Battle.objects.filter(arena=arena).values_list("modality", flat=True).distinct()
    for modality in sorted(set(modalities)):
        scopes.append(Scope(modality))
        if modality == Modality.TEXT:
            scopes.append(Scope(modality, style_control=True))
        categories = (
            Battle.objects.filter(arena=arena, modality=modality).exclude(category="")
            .values_list("category", flat=True).distinct()
        )  # fmt: skip
        scopes.extend(Scope(modality, category) for category in sorted(set(categories)))
    return scopes


def refresh_arena(arena: Arena) -> list[LeaderboardSnapshot]:
    """Recompute every board of an arena (per modality, with and without style control for
    text, and per category) and keep a bounded history of each."""
    Arena.objects.filter(pk=arena.pk).update(refresh_requested_at=None)
    started = time.monotonic()
    snapshots = []
    for scope in scopes_for(arena):
        try:
            snapshot = compute_snapshot(arena, scope)
        except ValueError as exc:  # e.g. too few battles for style control
            logger.warning("leaderboard %s %s not computed: %s", arena, scope, exc)
            continue
        if snapshot is None:
            continue
        snapshots.append(snapshot)
        stale = LeaderboardSnapshot.objects.filter(arena=arena, **scope.snapshot_fields()).values_list(
            "pk", flat=True
        )[SNAPSHOTS_KEPT_PER_SCOPE:]
        LeaderboardSnapshot.objects.filter(pk__in=list(stale)).delete()
    # Pacing: under a steady stream of votes the next refresh waits a multiple of this
    # one's duration, so refreshing takes at most DUET_LEADERBOARD_REFRESH_SHARE of a worker
    # (a small board refreshes in tens of milliseconds: the debounce decides then).
    took = time.monotonic() - started
    share = settings.LEADERBOARD_REFRESH_SHARE
    pause = took * (1 / share - 1) if 0 < share < 1 else 0.0
    Arena.objects.filter(pk=arena.pk).update(refresh_not_before=timezone.now() + timezone.timedelta(seconds=pause))
    return snapshots


# The task lives beside what it runs and what queues it; `arena.tasks` lists it under the
# name the settings route by.
@shared_task(name="arena.tasks.refresh_leaderboards", acks_late=True, reject_on_worker_lost=True, expires=600)
def refresh_leaderboards(arena_id: int) -> int:
    """Recompute an arena's boards (debounced: see `request_refresh`)."""
    arena = Arena.objects.filter(pk=arena_id).first()
    return 0 if arena is None else len(refresh_arena(arena))


def latest_snapshot(arena: Arena, scope: Scope) -> LeaderboardSnapshot | None:
    return LeaderboardSnapshot.objects.filter(arena=arena, **scope.snapshot_fields()).first()


@transaction.atomic
def rebuild_battles(arena: Arena | None = None) -> int:
    """Recompute the arena's vote battles from the current judgments (the source of truth)."""
    arena = arena or default_arena()
    Battle.objects.filter(arena=arena, source=BattleSource.ARENA).delete()
    current = (
        Judgment.objects.filter(comparison__origin__in=ARENA_ORIGINS, superseded_by__isnull=True)
        .select_related("judge", "comparison__prompt", "comparison__output_a", "comparison__output_b")
        .order_by("id")
    )
    return sum(record_battle(judgment) is not None for judgment in current.iterator(chunk_size=2000))


IMPORT_BATCH = 5000


def import_battles(log: BattleLog, arena_name: str, modality: str = Modality.TEXT) -> BattleImport:
    """Import a battle log's usable battles into an arena in one transaction, with a
    BattleImport that records how many came in and the rows skipped, by reason. A log
    that cannot be read leaves the database as it was. Unknown systems are created as
    `uploaded`."""
    from arena.models import Provider, System

    if modality not in Modality.values:
        raise ValueError(f"unknown modality {modality!r}")
    with transaction.atomic():
        arena, _ = Arena.objects.get_or_create(name=arena_name)
        systems = {s.name: s for s in System.objects.all()}
        batch, imported = [], 0
        for record in log:
            for name in (record.system_a, record.system_b):
                if name not in systems:
                    systems[name] = System.objects.create(name=name, modality=modality, provider=Provider.UPLOADED)
            style = {"a": record.style_a, "b": record.style_b} if record.style_a is not None else None
            batch.append(
                Battle(
                    arena=arena, system_a=systems[record.system_a], system_b=systems[record.system_b],
                    outcome=record.outcome, weight=record.weight, modality=modality, category=record.category,
                    anonymous=record.anonymous, source=BattleSource.IMPORT, judge_name=record.judge,
                    style=style, tstamp=record.tstamp,
                )
            )  # fmt: skip
            if len(batch) >= IMPORT_BATCH:
                Battle.objects.bulk_create(batch)
                imported += len(batch)
                batch = []
        Battle.objects.bulk_create(batch)
        imported += len(batch)
        record = BattleImport.objects.create(
            arena=arena, source=log.path.name[:255], format=log.fmt, modality=modality, imported=imported,
            skipped=dict(log.skipped),
        )  # fmt: skip
        transaction.on_commit(lambda: request_refresh(arena))
    return record


def import_notes(arena: Arena, modality: str) -> list[str]:
    """The board's notes on rows its imported logs skipped."""
    imports = BattleImport.objects.filter(arena=arena, modality=modality).exclude(skipped={})
    return [f"{item.source}: {item.imported} battles imported, {describe_skipped(item.skipped)}" for item in imports]

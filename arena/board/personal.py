"""A voter's own board: Bradley-Terry on their votes alone, said plainly to rest on few votes.

Computed on request (one voter's battles are few: a GROUP BY and a fit of a handful of
rows), never stored as a snapshot.
"""

from __future__ import annotations

from django.conf import settings

from arena.board.snapshots import battle_counts, compute_board
from arena.judges import session_judge_name
from arena.models import Battle, Judge, JudgeKind, Modality


def voter_for_request(request) -> Judge | None:
    """The judge whose votes a request's voter cast, without creating one: the logged-in
    user's, or in the open arena the session's. None when they have not voted yet."""
    if request.user.is_authenticated:
        return Judge.objects.filter(user=request.user).first()
    key = request.session.session_key
    if not (settings.OPEN_ARENA and key):
        return None
    return Judge.objects.filter(kind=JudgeKind.ANONYMOUS, name=session_judge_name(key), version="").first()


def voter_named(name: str) -> Judge | None:
    """A voter by username, or by judge name (anonymous and imported voters)."""
    return Judge.objects.filter(user__username=name).first() or Judge.objects.filter(name=name).first()


def voter_label(judge: Judge | None) -> str | None:
    if judge is None:
        return None
    return judge.user.get_username() if judge.user_id else judge.name


def personal_note(n_votes: int, few: bool) -> str:
    if n_votes == 0:
        return "You have no votes here yet: vote in the arena and your own board appears."
    noun = "vote" if n_votes == 1 else "votes"
    if few:
        return f"Based on {n_votes} of your {noun}; intervals are wide."
    return f"Based on {n_votes} of your {noun}."


def personal_board(judge: Judge | None, modality: str = Modality.TEXT) -> dict:
    """The board of one voter's current votes in a modality (every arena comparison they
    judged, whatever its category), as `Leaderboard.to_dict()` plus `voter`, `n_votes`
    and `note`. A board is "few votes" while any of its systems has fewer than
    DUET_LEADERBOARD_MIN_VOTES of them."""
    base = {"voter": voter_label(judge), "modality": modality}
    battles = Battle.objects.filter(judgment__judge=judge, modality=modality) if judge else Battle.objects.none()
    counts = battle_counts(battles)
    if counts.n_battles == 0:
        return {**base, "n_votes": 0, "note": personal_note(0, True), "method": None, "n_battles": 0,
                "components": [], "systems": [], "warnings": []}  # fmt: skip
    board = compute_board(counts).to_dict()
    few = any(row["flagged_low_votes"] for row in board["systems"])
    return {**base, "n_votes": counts.n_battles, "note": personal_note(counts.n_battles, few), **board}

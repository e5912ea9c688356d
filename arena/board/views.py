"""The leaderboard page, its downloads and the on-demand refresh."""

import csv
import io
import json
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from arena.board.activity import activity, activity_chart, parse_days
from arena.board.personal import personal_board, voter_for_request
from arena.board.retirement import hide_retired, retired_systems, wants_retired
from arena.board.snapshots import MATCHMAKING_KEY, STALE_REFRESH_SECONDS, Scope, battles_for, latest_snapshot, request_refresh
from arena.errors import InvalidInput
from arena.models import Arena, Battle, LeaderboardSnapshot, Modality

CSV_COLUMNS = [
    "rank", "system", "rating", "ci_low", "ci_high", "votes", "component", "flagged_low_votes", "both_bad_rate",
    "retired",
]  # fmt: skip


def _can_view(request) -> bool:
    return request.user.is_authenticated or settings.OPEN_ARENA


def resolve_scope(params) -> tuple[Arena | None, Scope]:
    arena = Arena.objects.filter(name=params.get("arena") or settings.DEFAULT_ARENA).first()
    modality = params.get("modality") or Modality.TEXT
    if modality not in Modality.values:
        modality = Modality.TEXT
    style = params.get("style_control") in ("1", "true", "on")
    return arena, Scope(modality=modality, category=params.get("category", ""), style_control=style)


def snapshot_json(snapshot: LeaderboardSnapshot | None, arena: Arena | None, scope: Scope) -> dict:
    meta = {
        "arena": arena.name if arena else None,
        "modality": scope.modality,
        "category": scope.category,
        "style_control": scope.style_control,
        "anonymous_only": scope.anonymous_only,
    }
    if snapshot is None:
        return {**meta, "snapshot": None, "method": None, "n_battles": 0, "components": [], "systems": []}
    return {
        **meta,
        "snapshot": snapshot.pk,
        "computed_at": snapshot.computed_at.isoformat(),
        **{key: value for key, value in snapshot.payload.items() if key != MATCHMAKING_KEY},
    }


def board_json(params) -> tuple[Arena | None, Scope, LeaderboardSnapshot | None, dict]:
    """The latest board of the scope `params` name, as shown: retired systems hidden unless
    `include_retired` asks for them (the page, its downloads and the API answer the same)."""
    arena, scope = resolve_scope(params)
    snapshot = latest_snapshot(arena, scope) if arena else None
    data = hide_retired(snapshot_json(snapshot, arena, scope), retired_systems(), wants_retired(params))
    return arena, scope, snapshot, data


def _modality(params) -> str:
    modality = params.get("modality") or Modality.TEXT
    if modality not in Modality.values:
        raise InvalidInput(f"unknown modality {modality!r}; expected one of {', '.join(Modality.values)}")
    return modality


def personal_json(request, params) -> dict:
    """The requesting voter's own board (arena.board.personal), retired systems as on the main board."""
    data = personal_board(voter_for_request(request), _modality(params))
    return hide_retired(data, retired_systems(), wants_retired(params))


def activity_json(params) -> dict:
    arena = Arena.objects.filter(name=params.get("arena") or settings.DEFAULT_ARENA).first()
    return activity(arena, parse_days(params.get("days")))


def _plot(systems: list[dict]) -> dict | None:
    """Geometry for the ratings-with-intervals SVG, computed here so the page needs no
    plotting library."""
    if not systems:
        return None
    lows = [s["ci_low"] if s["ci_low"] is not None else s["rating"] for s in systems]
    highs = [s["ci_high"] if s["ci_high"] is not None else s["rating"] for s in systems]
    low, high = min(lows), max(highs)
    span = max(high - low, 1.0)
    low, high = low - 0.05 * span, high + 0.05 * span
    width, row_height, left = 640, 26, 200

    def x(value):
        return round(left + (value - low) / (high - low) * (width - left - 20), 1)

    rows = [
        {"y": 20 + i * row_height, "name": s["system"], "x": x(s["rating"]), "x_low": x(lo), "x_high": x(hi)}
        for i, (s, lo, hi) in enumerate(zip(systems, lows, highs))
    ]
    ticks = [{"x": x(low + k * (high - low) / 4), "label": round(low + k * (high - low) / 4)} for k in range(5)]
    return {"rows": rows, "ticks": ticks, "width": width, "height": 40 + len(rows) * row_height, "left": left}


def _heat(value) -> str:
    """Background for a win-rate cell: blue when the row system wins, red when it loses."""
    if value is None:
        return "background:#f3f4f6"
    shade = int(abs(value - 0.5) * 2 * 200)
    return f"background:rgb({255 - shade},{255 - shade // 2},255)" if value >= 0.5 else f"background:rgb(255,{255 - shade // 2},{255 - shade})"


def leaderboard_page(request):
    if not _can_view(request):
        return redirect_to_login(request.get_full_path())
    arena, scope, snapshot, data = board_json(request.GET)
    matrices = data.get("matrices") or {}
    heatmap = [
        {"system": name, "cells": [{"value": v, "style": _heat(v)} for v in row]}
        for name, row in zip(matrices.get("systems", []), matrices.get("win_rates", []))
    ]
    similar, similar_error = None, None
    like_text, like_prompt = request.GET.get("like", "").strip(), request.GET.get("like_prompt", "").strip()
    if arena and (like_text or like_prompt):
        from arena.errors import DuetError
        from arena.board.similar import similar_board_from_params

        params = {"arena": arena.name, "prompt": like_text, "prompt_id": like_prompt or None,
                  "power": request.GET.get("power")}  # fmt: skip
        from arena import ratelimit

        try:
            ratelimit.check(request, "similar")
            similar = similar_board_from_params(params, scope, request.user)
        except DuetError as error:
            similar_error = error.message
    # A board with votes but no computation yet (a battle log just imported, the first
    # votes of an arena): say so, and whether the worker has a refresh queued.
    pending_votes, refresh_queued_at, refresh_overdue = 0, None, False
    if arena and not data["systems"]:
        pending_votes = battles_for(arena, scope).count()
        refresh_queued_at = Arena.objects.filter(pk=arena.pk).values_list("refresh_requested_at", flat=True).first()
        # Queued longer than a refresh ever waits: the worker is likely not running.
        refresh_overdue = refresh_queued_at is not None and (
            timezone.now() - refresh_queued_at).total_seconds() > STALE_REFRESH_SECONDS  # fmt: skip
    categories = []
    if arena:
        categories = sorted(
            set(
                Battle.objects.filter(arena=arena, modality=scope.modality)
                .exclude(category="").values_list("category", flat=True).distinct()
            )
        )  # fmt: skip
    return render(
        request,
        "arena/leaderboard.html",
        {
            "arenas": Arena.objects.order_by("name"),
            "arena": arena,
            "scope": scope,
            "modalities": Modality.choices,
            "categories": categories,
            "data": data,
            "snapshot": snapshot,
            "plot": _plot(data["systems"]),
            "heatmap": heatmap,
            "heat_systems": matrices.get("systems", []),
            "style_coefficients": data.get("style_coefficients", {}),
            "query": request.GET.urlencode(),
            "like_text": like_text,
            "like_prompt": like_prompt,
            "similar": similar,
            "similar_error": similar_error,
            "similar_power": (similar or {}).get("similarity", {}).get("power", settings.SIMILAR_BOARD_POWER),
            "current_query": urlencode({k: v for k, v in request.GET.items() if k != "include_retired"}),
            "pending_votes": pending_votes,
            "refresh_queued_at": refresh_queued_at,
            "refresh_overdue": refresh_overdue,
        },
    )


def _error_page(request, exc: InvalidInput):
    return render(request, "arena/leaderboard_error.html", {"detail": exc.message}, status=exc.status_code)


def personal_page(request):
    """The logged-in voter's own board (or, in the open arena, the session's)."""
    if not _can_view(request):
        return redirect_to_login(request.get_full_path())
    try:
        data = personal_json(request, request.GET)
    except InvalidInput as exc:
        return _error_page(request, exc)
    return render(
        request,
        "arena/leaderboard_mine.html",
        {"data": data, "modalities": Modality.choices, "plot": _plot(data["systems"]),
         "include_retired": data["include_retired"]},
    )  # fmt: skip


def activity_page(request):
    """Votes per day per modality, as a chart and a table."""
    if not _can_view(request):
        return redirect_to_login(request.get_full_path())
    try:
        data = activity_json(request.GET)
    except InvalidInput as exc:
        return _error_page(request, exc)
    return render(
        request,
        "arena/leaderboard_activity.html",
        {"data": data, "chart": activity_chart(data), "arenas": Arena.objects.order_by("name"),
         "days": data["days_window"] or "", "recent": list(reversed(data["days"]))[:60]},
    )  # fmt: skip


def leaderboard_download(request, fmt: str):
    if not _can_view(request):
        return JsonResponse({"error": "not_authenticated", "detail": "log in to see the leaderboard"}, status=401)
    arena, scope, _, data = board_json(request.GET)
    name = f"leaderboard-{data['arena'] or 'none'}-{scope.modality}{'-' + scope.category if scope.category else ''}"
    if fmt == "json":
        response = HttpResponse(json.dumps(data, indent=2), content_type="application/json")
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(data["systems"])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


@require_POST
@permission_required("arena.view_judgment", raise_exception=True)
def leaderboard_refresh(request):
    arena, scope = resolve_scope(request.POST)
    if arena is None:
        messages.error(request, "There is no such arena.")
    elif request_refresh(arena):
        messages.success(request, "Refresh queued; the board updates within seconds once the worker runs it.")
    else:
        messages.info(request, "A refresh is already queued.")
    return redirect(f"{request.path.rsplit('/refresh/', 1)[0]}/?{request.POST.get('query', '')}")

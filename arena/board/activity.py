"""Activity over time: battles per day per modality in an arena, and the chart's geometry
(inline SVG, so the page needs no plotting library)."""

from __future__ import annotations

import datetime

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from arena.errors import InvalidInput
from arena.models import Arena, Battle, Modality

MAX_DAYS = 3660
COLOURS = {Modality.TEXT: "#3558d4", Modality.IMAGE: "#d97706", Modality.AUDIO: "#059669"}


def parse_days(raw) -> int | None:
    """The `days` window (the last N days, today included), or None for the whole history."""
    if raw in (None, ""):
        return None
    try:
        days = int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"days must be a whole number of days, got {raw!r}") from None
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}, got {days}")
    return days


def activity(arena: Arena | None, days: int | None = None, today: datetime.date | None = None) -> dict:
    """Battles (votes, and imported battles in an imported arena) per UTC day and modality.
    Every day from the first to the last (or the last `days` days up to today) is listed,
    days without battles as zeros, so the series can be plotted as it is."""
    modalities = list(Modality.values)
    out = {"arena": arena.name if arena else None, "modalities": modalities, "days_window": days}
    queryset = Battle.objects.none() if arena is None else Battle.objects.filter(arena=arena)
    today = today or timezone.now().date()
    start = None
    if days is not None:
        start = today - datetime.timedelta(days=days - 1)
        queryset = queryset.filter(tstamp__date__gte=start, tstamp__date__lte=today)
    counts: dict[datetime.date, dict[str, int]] = {}
    grouped = (
        queryset.annotate(day=TruncDate("tstamp")).values_list("day", "modality").annotate(n=Count("id"))
        .order_by("day")
    )  # fmt: skip
    for day, modality, n in grouped:
        counts.setdefault(day, {})[modality] = n
    if counts or start is not None:
        first = start if start is not None else min(counts)
        last = today if start is not None else max(counts)
        span = [first + datetime.timedelta(days=k) for k in range((last - first).days + 1)]
    else:
        span = []
    series = []
    for day in span:
        row = {"day": day.isoformat(), **{m: counts.get(day, {}).get(m, 0) for m in modalities}}
        row["total"] = sum(row[m] for m in modalities)
        series.append(row)
    out["days"] = series
    out["totals"] = {m: sum(row[m] for row in series) for m in modalities}
    out["total"] = sum(out["totals"].values())
    return out


def activity_chart(data: dict, width: int = 640, height: int = 220) -> dict | None:
    """Stacked bars, one per day, a segment per modality; None when there is nothing to draw."""
    days = data["days"]
    if not days or data["total"] == 0:
        return None
    left, right, top, bottom = 44, 10, 10, 28
    slot = (width - left - right) / len(days)
    bar = max(slot * 0.8, 1.0)
    peak = max(row["total"] for row in days)
    scale = (height - top - bottom) / peak
    bars = []
    for k, row in enumerate(days):
        x = round(left + k * slot + (slot - bar) / 2, 2)
        base = height - bottom
        for modality in data["modalities"]:
            n = row[modality]
            if not n:
                continue
            h = round(n * scale, 2)
            base -= h
            bars.append({"x": x, "y": round(base, 2), "w": round(bar, 2), "h": h, "colour": COLOURS[modality],
                         "title": f"{row['day']}: {n} {modality}"})  # fmt: skip
    ticks = sorted({0, peak // 2, peak})
    y_ticks = [{"y": round(height - bottom - t * scale, 2), "label": t} for t in ticks]
    labelled = sorted({0, len(days) // 2, len(days) - 1})
    x_labels = [{"x": round(left + (k + 0.5) * slot, 2), "label": days[k]["day"]} for k in labelled]
    legend = [{"modality": m, "colour": COLOURS[m], "x": left + 90 * i} for i, m in enumerate(data["modalities"])]
    return {"width": width, "height": height, "left": left, "bottom": height - bottom, "bars": bars,
            "y_ticks": y_ticks, "x_labels": x_labels, "legend": legend}  # fmt: skip

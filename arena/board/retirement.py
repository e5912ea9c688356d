"""Retired systems: an admin takes a system off the current board and out of matchmaking for
good, keeping its battles (boards are always recomputable from them).

Boards are computed on every battle, retired systems' included, so the ratings of the
systems that stay do not jump when one retires; the retired rows are hidden when a board
is shown (`hide_retired`), unless the reader asks for them (``?include_retired=1``).
Matchmaking, live battles and the generation tasks leave a retired system out through
`is_active`, which retiring clears, and through `retired_at` itself.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from arena.errors import InvalidInput
from arena.models import System


def retire_system(system: System, by: str) -> bool:
    """Retire a system; False when it was retired already (nothing changes)."""
    if system.retired_at is not None:
        return False
    system.retired_at = timezone.now()
    system.retired_by = by[:150]
    system.is_active = False
    # save(), not update(): the change stamps tell every process's matchmaking index.
    with transaction.atomic():
        system.save(update_fields=["retired_at", "retired_by", "is_active"])
    return True


def unretire_system(system: System) -> bool:
    """Bring a retired system back to the board and matchmaking; False when it was not retired."""
    if system.retired_at is None:
        return False
    system.retired_at = None
    system.retired_by = ""
    system.is_active = True
    with transaction.atomic():
        system.save(update_fields=["retired_at", "retired_by", "is_active"])
    return True


def system_named(name: str) -> System:
    system = System.objects.filter(name=name).first()
    if system is None:
        raise InvalidInput(f"no system named {name!r}")
    return system


def retired_systems() -> dict[str, str]:
    """Name -> when it was retired (ISO 8601), for every retired system."""
    rows = System.objects.filter(retired_at__isnull=False).order_by("name").values_list("name", "retired_at")
    return {name: when.isoformat() for name, when in rows}


def wants_retired(params) -> bool:
    return str(params.get("include_retired", "")).lower() in ("1", "true", "on", "yes")


def hide_retired(data: dict, retired: dict[str, str], include: bool) -> dict:
    """A board's JSON (a snapshot's payload, or `Leaderboard.to_dict()`) as shown: each row
    marked `retired`, and without `include` the retired rows (and their matrix rows and
    columns) left out, the others re-ranked among themselves. A rank is 1 + the number of
    shown systems of the same component whose interval lies wholly above this one's."""
    data = dict(data)
    rows = [{**row, "retired": row["system"] in retired} for row in data.get("systems", [])]
    data["retired_systems"] = retired
    data["include_retired"] = include
    if include or not any(row["retired"] for row in rows):
        data["systems"] = rows
        return data
    shown = [row for row in rows if not row["retired"]]

    def bounds(row):
        low = row["ci_low"] if row.get("ci_low") is not None else row["rating"]
        high = row["ci_high"] if row.get("ci_high") is not None else row["rating"]
        return low, high

    for row in shown:
        _, high = bounds(row)
        row["rank"] = 1 + sum(
            1 for other in shown if other["component"] == row["component"] and bounds(other)[0] > high
        )
    data["systems"] = shown
    # Emptied components stay, so each row's `component` still indexes this list.
    data["components"] = [
        [name for name in component if name not in retired] for component in data.get("components", [])
    ]
    matrices = data.get("matrices")
    if matrices and matrices.get("systems"):
        keep = [k for k, name in enumerate(matrices["systems"]) if name not in retired]
        data["matrices"] = {
            key: [value[k] for k in keep] if key == "systems" else [[value[i][j] for j in keep] for i in keep]
            for key, value in matrices.items()
        }
    return data

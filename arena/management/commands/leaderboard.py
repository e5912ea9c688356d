import csv
import io
import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from arena.board.battle_logs import FORMATS, BattleLogError, read_battles


class Command(BaseCommand):
    help = "Print a leaderboard for an arena in the database, or straight from a battle log file."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--arena", help="arena name in the database")
        source.add_argument("--battles", help="a battle log file (read only, the database is not touched)")
        source.add_argument("--voter", help="one voter's own board: their votes only (a username, or a judge's name)")
        parser.add_argument("--format-in", choices=FORMATS, default="fastchat")
        parser.add_argument("--modality", default=None, help="for --arena: text, image or audio (default: text, or the only one)")
        parser.add_argument("--category", default="")
        parser.add_argument("--method", choices=["bt", "elo"], default="bt")
        parser.add_argument("--ci", choices=["bootstrap", "sandwich", "none"], default="bootstrap")
        parser.add_argument("--rounds", type=int, default=1000)
        parser.add_argument("--style-control", action="store_true")
        parser.add_argument("--anonymous-only", action="store_true")
        parser.add_argument("--both-bad", choices=["tie", "drop"], default="tie")
        parser.add_argument("--min-votes", type=int, default=None)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--format", choices=["table", "json", "csv"], default="table", dest="fmt")
        parser.add_argument("--include-retired", action="store_true", help="also list retired systems (marked)")
        parser.add_argument("--activity", action="store_true", help="with --arena: votes per day per modality instead")
        parser.add_argument("--days", default=None, help="with --activity: the last N days up to today (default: all)")

    def handle(self, *args, **options):
        from arena import ratings

        if options["activity"]:
            self._activity(options)
            return
        records, notes = self._records(options)
        if not records:
            raise CommandError(f"{options['voter']} has no votes to rate" if options["voter"] else "no battles to rate")
        style = options["style_control"]
        if style and any(r.get("style_a") is None for r in records):
            raise CommandError("--style-control needs style features on every battle (text battles with metadata)")
        rows = records if style else [{k: v for k, v in r.items() if k not in ("style_a", "style_b")} for r in records]
        battles = ratings.Battles.from_records(rows, style_features=ratings.TEXT_STYLE_FEATURES if style else ())
        min_votes = options["min_votes"]
        if min_votes is None:
            # A voter's own board flags (and calls "wide") what the arena's boards would.
            min_votes = settings.LEADERBOARD_MIN_VOTES if options["voter"] else 0
        try:
            board = ratings.compute_leaderboard(
                battles if options["method"] == "elo" else battles.aggregate(),
                method=options["method"],
                ci=options["ci"],
                rounds=options["rounds"],
                both_bad=options["both_bad"],
                style_control=style,
                min_votes=min_votes,
                seed=options["seed"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        data = board.to_dict()
        data["warnings"] = [*data["warnings"], *notes]
        if not options["battles"]:
            from arena.board.retirement import hide_retired, retired_systems

            data = hide_retired(data, retired_systems(), options["include_retired"])
        if options["voter"]:
            from arena.board.personal import personal_note

            data["voter"], data["n_votes"] = options["voter"], data["n_battles"]
            data["note"] = personal_note(data["n_battles"], any(r["flagged_low_votes"] for r in data["systems"]))
        self._print(data, options["fmt"])

    def _activity(self, options) -> None:
        from arena.board.activity import activity, parse_days
        from arena.errors import InvalidInput
        from arena.models import Arena

        if not options["arena"]:
            raise CommandError("--activity needs --arena NAME")
        arena = Arena.objects.filter(name=options["arena"]).first()
        if arena is None:
            raise CommandError(f"no arena named {options['arena']!r}")
        try:
            data = activity(arena, parse_days(options["days"]))
        except InvalidInput as exc:
            raise CommandError(exc.message) from None
        columns = ["day", *data["modalities"], "total"]
        if options["fmt"] == "json":
            self.stdout.write(json.dumps(data, indent=2))
        elif options["fmt"] == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(data["days"])
            self.stdout.write(buffer.getvalue(), ending="")
        else:
            self.stdout.write(f"votes per day in {data['arena']}: {data['total']} in all")
            self.stdout.write("  ".join(f"{c:>10}" for c in columns))
            for row in data["days"]:
                self.stdout.write("  ".join(f"{row[c]:>10}" for c in columns))

    def _records(self, options) -> tuple[list[dict], list[str]]:
        """Battle rows in time order, filtered as asked, and the notes on rows left out of
        the log (or out of the logs imported into the arena)."""
        if options["battles"]:
            try:
                log = read_battles(options["battles"], options["format_in"])
                records = sorted(log, key=lambda r: r.tstamp)
            except BattleLogError as exc:
                raise CommandError(str(exc)) from None
            notes = [f"{log.path.name}: {log.describe_skipped()}"] if log.skipped else []
            if options["anonymous_only"]:
                records = [r for r in records if r.anonymous]
            if options["category"]:
                records = [r for r in records if r.category == options["category"]]
            return [r.as_rating_row() for r in records], notes
        from arena.board.snapshots import import_notes
        from arena.models import Arena, Battle

        if options["voter"]:
            from arena.board.personal import voter_named

            judge = voter_named(options["voter"])
            if judge is None and get_user_model().objects.filter(username=options["voter"]).exists():
                raise CommandError(f"{options['voter']} has no votes to rate")
            if judge is None:
                raise CommandError(f"no voter named {options['voter']!r} (a username, or a judge's name)")
            battles = Battle.objects.filter(judgment__judge=judge)
            arena = None
        else:
            arena = Arena.objects.filter(name=options["arena"]).first()
            if arena is None:
                raise CommandError(f"no arena named {options['arena']!r}")
            battles = Battle.objects.filter(arena=arena)
        modality = options["modality"]
        if modality is None:
            present = sorted(set(battles.values_list("modality", flat=True)))
            modality = present[0] if len(present) == 1 else "text"
        battles = battles.filter(modality=modality)
        if options["anonymous_only"]:
            battles = battles.filter(anonymous=True)
        if options["category"]:
            battles = battles.filter(category=options["category"])
        rows = battles.order_by("tstamp", "id").values_list(
            "system_a__name", "system_b__name", "outcome", "weight", "style"
        )
        records = []
        for a, b, outcome, weight, style in rows.iterator(chunk_size=5000):
            row = {"system_a": a, "system_b": b, "outcome": outcome, "weight": weight}
            if style:
                row["style_a"], row["style_b"] = style["a"], style["b"]
            else:
                row["style_a"] = None
            records.append(row)
        return records, [] if arena is None else import_notes(arena, modality)

    def _print(self, data: dict, fmt: str) -> None:
        if fmt == "json":
            self.stdout.write(json.dumps(data, indent=2))
            return
        columns = ["rank", "system", "rating", "ci_low", "ci_high", "votes", "component", "both_bad_rate", "retired"]
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(data["systems"])
            self.stdout.write(buffer.getvalue(), ending="")
            return

        def number(value):
            return "" if value is None else f"{value:.1f}"

        if data.get("note"):
            self.stdout.write(f"{data['voter']}: {data['note']}")
        self.stdout.write(f"{data['method']} on {data['n_battles']} battles, {len(data['components'])} component(s)")
        self.stdout.write(f"{'rank':>4}  {'system':<32} {'rating':>8} {'95% CI':>17} {'votes':>7} {'both bad':>9}")
        for row in data["systems"]:
            interval = f"{number(row['ci_low'])}–{number(row['ci_high'])}" if row["ci_low"] is not None else ""
            flag = (" *" if row.get("flagged_low_votes") else "") + (" (retired)" if row.get("retired") else "")
            both_bad = "" if row.get("both_bad_rate") is None else f"{row['both_bad_rate']:.1%}"
            self.stdout.write(
                f"{row['rank']:>4}  {row['system']:<32} {row['rating']:>8.1f} {interval:>17} {row['votes']:>7}"
                f" {both_bad:>9}{flag}"
            )
        for warning in data.get("warnings", []):
            self.stdout.write(f"note: {warning}")

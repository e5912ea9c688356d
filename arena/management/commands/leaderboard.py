import csv
import io
import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from arena.board.battle_logs import FORMATS, BattleLogError, read_battle_columns


NO_STYLE = "--style-control needs style features on every battle (text battles with metadata)"


class Command(BaseCommand):
    help = "Print a leaderboard for an arena in the database, or straight from a battle log file."
    # The system checks import every URL module and view (1.2 s measured); a board from a file
    # needs none of them, and `manage.py check` still runs them.
    requires_system_checks = []

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
        like = parser.add_mutually_exclusive_group()
        like.add_argument("--like", metavar="TEXT", help="for --arena: the board for prompts like this text "
                          "(battles weighted by max(0, cos)^power to it; sandwich intervals)")
        like.add_argument("--like-prompt", metavar="ID", type=int, help="for --arena: the board for prompts like prompt ID")
        parser.add_argument("--power", type=float, default=None,
                            help="with --like: the weighting's exponent (default DUET_SIMILAR_BOARD_POWER, 4)")
        parser.add_argument("--include-retired", action="store_true", help="also list retired systems (marked)")
        parser.add_argument("--activity", action="store_true", help="with --arena: votes per day per modality instead")
        parser.add_argument("--days", default=None, help="with --activity: the last N days up to today (default: all)")

    def handle(self, *args, **options):
        from arena import ratings

        if options["like"] is not None or options["like_prompt"] is not None:
            self._print(self._similar(options), options["fmt"])
            return
        if options["activity"]:
            self._activity(options)
            return
        style = options["style_control"]
        if options["battles"]:
            battles, notes = self._battles_from_log(options)
        else:
            records, notes = self._records(options)
            if not records:
                raise CommandError(f"{options['voter']} has no votes to rate" if options["voter"] else "no battles to rate")
            if style and any(r.get("style_a") is None for r in records):
                raise CommandError(NO_STYLE)
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

    def _similar(self, options) -> dict:
        from arena.board.snapshots import Scope
        from arena.errors import DuetError
        from arena.board.similar import arena_named, similar_board_for
        from arena.similar.embedding import EmbeddingModelError

        if not options["arena"]:
            raise CommandError("--like and --like-prompt need --arena: a battle log has no prompts to compare")
        try:
            arena = arena_named(options["arena"])
            scope = Scope(modality=options["modality"] or "text", category=options["category"],
                          anonymous_only=options["anonymous_only"])  # fmt: skip
            data = similar_board_for(arena, scope, text=options["like"], prompt_id=options["like_prompt"],
                                     power=options["power"])  # fmt: skip
        except (DuetError, EmbeddingModelError) as error:
            raise CommandError(getattr(error, "message", str(error))) from None
        if not data["systems"]:
            raise CommandError("no battles on embedded prompts to rate; " + "; ".join(data["warnings"]))
        return data

    def _battles_from_log(self, options):
        """The log's battles, filtered as asked (in time order for Elo, which is the only
        method that reads the order), and the note on the rows it skipped."""
        elo, style = options["method"] == "elo", options["style_control"]
        try:
            log = read_battle_columns(
                options["battles"],
                options["format_in"],
                anonymous=options["anonymous_only"],
                category=bool(options["category"]),
                tstamp=elo,
                style=style,
            )
        except BattleLogError as exc:
            raise CommandError(str(exc)) from None
        notes = [f"{log.path.name}: {log.describe_skipped()}"] if log.skipped else []
        if options["anonymous_only"]:
            log = log.take(log.anonymous)
        if options["category"]:
            log = log.take(log.category == options["category"])
        if not log.battles:
            raise CommandError("no battles to rate")
        if style and not log.has_style().all():
            raise CommandError(NO_STYLE)
        return (log.in_time_order() if elo else log).to_battles(style), notes

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
        """An arena's battle rows in time order, filtered as asked, and the notes on rows
        left out of the logs imported into it."""
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
        similarity = data.get("similarity")
        if similarity:
            columns.append("effective_votes")
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
        if similarity:
            self.stdout.write(
                f"for prompts like {data['query']['text'][:60]!r}: weight max(0, cos)^{similarity['power']:g}, "
                f"{similarity['n_battles_weighted']} battles weighted, Kish effective n {similarity['effective_n']:.1f}"
            )
        extra = f" {'eff. votes':>10}" if similarity else ""
        self.stdout.write(f"{'rank':>4}  {'system':<32} {'rating':>8} {'95% CI':>17} {'votes':>7} {'both bad':>9}{extra}")
        for row in data["systems"]:
            interval = f"{number(row['ci_low'])}–{number(row['ci_high'])}" if row["ci_low"] is not None else ""
            flag = (" *" if row.get("flagged_low_votes") else "") + (" (retired)" if row.get("retired") else "")
            both_bad = "" if row.get("both_bad_rate") is None else f"{row['both_bad_rate']:.1%}"
            effective = f" {row['effective_votes']:>10.1f}" if similarity else ""
            self.stdout.write(
                f"{row['rank']:>4}  {row['system']:<32} {row['rating']:>8.1f} {interval:>17} {row['votes']:>7}"
                f" {both_bad:>9}{effective}{flag}"
            )
        for warning in data.get("warnings", []):
            self.stdout.write(f"note: {warning}")

import json

from django.core.management.base import BaseCommand, CommandError

from arena.board import outliers
from arena.models import Arena, Modality


class Command(BaseCommand):
    help = (
        "List voters whose votes disagree with the crowd's leaderboard more than chance allows "
        "(a score test per voter, corrected for testing many); --mark flags them for review, which "
        "leaves their judgments out of leaderboards and exports (DUET_EXCLUDE_FLAGGED_VOTERS) until "
        "a reviewer clears the flag in the admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("--arena", default=None, help="arena name (default: the built-in arena)")
        parser.add_argument("--modality", choices=Modality.values, default=Modality.TEXT)
        parser.add_argument("--alpha", type=float, default=outliers.DEFAULT_ALPHA)
        parser.add_argument("--min-votes", type=int, default=outliers.DEFAULT_MIN_VOTES)
        parser.add_argument("--correction", choices=["holm", "bh"], default="holm")
        parser.add_argument("--mark", action="store_true", help="flag the voters for review (Judge.flagged_at)")
        parser.add_argument("--format", choices=["table", "json"], default="table", dest="fmt")

    def handle(self, *args, arena, modality, alpha, min_votes, correction, mark, fmt, **options):
        from django.conf import settings

        name = arena or settings.DEFAULT_ARENA
        found = Arena.objects.filter(name=name).first()
        if found is None:
            raise CommandError(f"there is no arena {name!r}")
        report = outliers.find_outliers(
            outliers.vote_rows(found, modality), alpha=alpha, min_votes=min_votes, correction=correction
        )
        marked = outliers.mark_flagged(report.flagged) if mark else 0
        if fmt == "json":
            rows = [{"voter": r.voter, "p_value": r.p_value, "p_adjusted": r.p_adjusted, "n_votes": r.n_votes,
                     "reason": r.reason} for r in report.flagged]  # fmt: skip
            self.stdout.write(json.dumps({"tested": len(report.results), "untested": len(report.untested),
                                          "flagged": rows, "marked": marked}, indent=2))  # fmt: skip
            return
        self.stdout.write(
            f"{len(report.results)} voters tested, {len(report.untested)} with fewer than {min_votes} decisive "
            f"votes not tested; {len(report.flagged)} flagged at {correction}-adjusted p < {alpha}."
        )
        for result in report.flagged:
            self.stdout.write(f"  {result.voter}: {result.reason}")
        if mark:
            self.stdout.write(self.style.SUCCESS(f"Flagged {marked} judges for review."))

import json

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from routing.boards import judge_boards
from routing.report import project_judges


def _number(value, digits=3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


class Command(BaseCommand):
    help = ("Judge versus people on a project: per automatic judge, the board fitted from its verdicts beside "
            "the board fitted from human votes on the same comparisons, Spearman and Kendall between them, "
            "and the systems whose rank differs most.")

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="the project's name")
        parser.add_argument("--judge", help="only this judge: its name, name@version, or id")
        parser.add_argument("--format", choices=("text", "json"), default="text")

    def handle(self, *args, project, judge, format, **options):
        found = Project.objects.filter(name=project).first()
        if found is None:
            raise CommandError(f"no project named {project!r}")
        chosen = None
        if judge:
            judges = project_judges(found)
            chosen = next((j for j in judges if judge in (str(j.pk), j.name, str(j))), None)
            if chosen is None:
                known = ", ".join(str(j) for j in judges) or "none"
                raise CommandError(f"no automatic judge {judge!r} has judged {project!r} (judges: {known})")
        entries = judge_boards(found, chosen)
        if format == "json":
            self.stdout.write(json.dumps([entry.to_dict() for entry in entries], indent=2))
            return
        if not entries:
            self.stdout.write(f"no automatic judge has judged {project!r} yet")
        for entry in entries:
            agreement = entry.agreement
            self.stdout.write(f"{entry.judge}: {entry.comparisons} comparisons judged by both, "
                              f"{entry.human_votes} human votes on them")  # fmt: skip
            if agreement:
                self.stdout.write(f"  Spearman {_number(agreement['spearman'])}  Kendall {_number(agreement['kendall'])}"
                                  f"  over {agreement['n']} systems")  # fmt: skip
                self.stdout.write(f"  {'system':<32} {'judge':>8} {'rank':>5} {'people':>8} {'rank':>5} {'shift':>6}")
                for row in agreement["systems"]:
                    self.stdout.write(
                        f"  {row['system']:<32} {row['rating_judge']:>8.1f} {row['rank_judge']:>5g} "
                        f"{row['rating_people']:>8.1f} {row['rank_people']:>5g} {row['shift']:>+6g}"
                    )
            for note in entry.notes:
                self.stdout.write(f"  note: {note}")

import json

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from arena.errors import DuetError
from routing import actions, report
from routing.judges import JudgeError


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


class Command(BaseCommand):
    help = ("Run a judge on a project's comparisons in this process, writing its verdicts as judgments "
            "(comparisons it has judged before are skipped), then print how it agrees with people.")

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="the project's name")
        parser.add_argument("--judge", help="smollm2, generate-smollm2, model:/dir, openai:[MODEL], reward:RUN_ID, "
                                            "imported:NAME; the project's judge when left out (smollm2 by default)")
        parser.add_argument("--limit", type=int, help="judge at most N comparisons not judged yet")
        parser.add_argument("--format", choices=("text", "json"), default="text")

    def handle(self, *args, project, judge, limit, format, **options):
        found = Project.objects.filter(name=project).first()
        if found is None:
            raise CommandError(f"no project named {project!r}")
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1")

        def progress(done: int, total: int, counts: dict) -> None:
            if format == "text":
                self.stdout.write(f"judged {done}/{total}  (unparsable {counts['unparsable']})")

        try:
            summary = actions.judge_project(found, spec=judge, limit=limit, on_progress=progress)
        except (JudgeError, DuetError) as error:
            raise CommandError(getattr(error, "message", None) or str(error)) from error
        judge_row = actions.routing_settings(found).judge
        agreement, _ = report.agreement_figures(found, judge_row)
        result = {**summary.as_dict(), "agreement": agreement.to_dict()}
        if format == "json":
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(
            f"{summary.judge} on project {found.name}: {summary.judged} judged, {summary.skipped} skipped "
            f"(judged before), {summary.unparsable} unparsable, {summary.unsupported} unsupported modality"
            + (f", {summary.left} left by --limit" if summary.left else "") + f" in {summary.seconds:.1f} s"
        )
        if agreement.n:
            self.stdout.write(
                f"agreement with the human majority: {_percent(agreement.agreement)} on {agreement.n} comparisons, "
                f"{_percent(agreement.agreement_no_ties)} without ties ({agreement.n_no_ties}); always the "
                f"commonest label: {_percent(agreement.chance)}"
            )
        else:
            self.stdout.write("agreement with the human majority: no comparison has both a human label and a verdict")
        self.stdout.write(f"same verdict in both orders: {_percent(agreement.order_consistency)} "
                          f"of {agreement.order_known}")

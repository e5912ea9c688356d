import json

from django.core.management.base import BaseCommand, CommandError

from annotation.export.options import SOURCES


class Command(BaseCommand):
    help = "Agreement (Krippendorff, Fleiss, pairwise Cohen) and Dawid-Skene reliability for a project's judgments."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project name")
        parser.add_argument("--format", choices=["json", "table"], default="table", dest="fmt")
        parser.add_argument("--source", choices=SOURCES, default="human", help="people, automatic judges, or both")

    def handle(self, *args, **options):
        from annotation.export import Selection, SelectionError, assess_selection, quality_dict

        try:
            selection = Selection.resolve(project=options["project"], source=options["source"])
        except SelectionError as exc:
            raise CommandError(str(exc)) from None
        report, selected = assess_selection(selection)
        data = quality_dict(selection, report, selected)
        if options["fmt"] == "json":
            self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            self.stdout.write(format_table(data))


def format_table(data: dict) -> str:
    def number(value, digits=3):
        return "—" if value is None else f"{value:.{digits}f}"

    lines = [
        f"{data['project']}: {data['n_judgments']} judgments on {data['n_comparisons']} comparisons "
        f"by {data['n_annotators']} annotators; {data['n_aggregated']} aggregated",
        f"Krippendorff's alpha {number(data['krippendorff_alpha'])}   Fleiss' kappa {number(data['fleiss_kappa'])}",
        "",
        f"{'annotator':<28} {'kind':<15} {'n':>6} {'reliab.':>8} {'skill':>7} {'agree':>7} {'gold':>6}  flags",
    ]
    for row in data["annotators"]:
        lines.append(
            f"{str(row['annotator'])[:28]:<28} {row['kind']:<15} {row['n_judgments']:>6} "
            f"{number(row['reliability']):>8} {number(row['skill'], 2):>7} {number(row['agreement']):>7} "
            f"{number(row['gold_accuracy'], 2):>6}  {', '.join(row['flags'])}".rstrip()
        )
    if data["cohen_kappa"]:
        lines += ["", f"{'Cohen’s kappa':<40} {'kappa':>7} {'n':>6}"]
        for pair in data["cohen_kappa"]:
            names = f"{pair['a']} / {pair['b']}"[:40]
            lines.append(f"{names:<40} {number(pair['kappa']):>7} {pair['n']:>6}")
    return "\n".join(lines)

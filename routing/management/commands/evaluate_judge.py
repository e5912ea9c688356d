import json

from django.core.management.base import BaseCommand, CommandError

from routing.judges import DEFAULT_JUDGE, JudgeError
from routing.judges.evaluation import evaluate_judge
from routing.judges.files import LabelledFileError, judge_for_pairs, read_labelled_pairs


class Command(BaseCommand):
    help = ("Run a judge on a labelled pairwise file (Duet JSONL or PandaLM JSON) and score it against the "
            "gold or human-majority labels. Reads files only; needs no database.")
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--judge", default=DEFAULT_JUDGE,
                            help="smollm2 (default), generate-smollm2, model:/dir, generate-model:/dir, openai:[MODEL], "
                                 "or the name of a judge whose verdicts the file (or --judge-file) carries")
        parser.add_argument("--judge-file", help="verdicts to replay, e.g. PandaLM's GPT-3.5 verdicts (matched by idx)")
        parser.add_argument("--limit", type=int, help="only the first N items")
        parser.add_argument("--batch-size", type=int, help="pairs per forward pass (local logit judge)")
        parser.add_argument("--format", choices=("json", "text"), default="text")

    def handle(self, *args, path, judge, judge_file, limit, batch_size, format, **options):
        try:
            pairs = read_labelled_pairs(path, judge_file, judge_name=judge, limit=limit)
            judge_options = {"batch_size": batch_size} if batch_size else {}
            report = evaluate_judge(judge_for_pairs(judge, pairs, **judge_options), pairs).to_dict()
        except (OSError, ValueError, LabelledFileError, JudgeError) as error:
            raise CommandError(str(error)) from error
        if format == "json":
            self.stdout.write(json.dumps(report, indent=2))
            return
        self.stdout.write(_text_report(report))


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _text_report(report: dict) -> str:
    speed = report["pairs_per_second"]
    speed = f"{speed:.2f}" if speed else "n/a"
    lines = [
        f"judge {report['judge']} ({report['judge_version']}) on {report['n']} pairs",
        f"accuracy {_percent(report['accuracy'])}   without ties {_percent(report['accuracy_no_ties'])}   "
        f"always-the-commonest-label {_percent(report['chance_accuracy'])}",
        f"order consistency {_percent(report['order_consistency'])} (a-over-b preference kept: "
        f"{_percent(report['preference_consistency'])})   unparsable {report['unparsable']}   "
        f"pairs/s {speed}",
        "confusion (rows: gold, columns: judge)",
    ]
    columns = list(next(iter(report["confusion"].values())))
    lines.append("gold  " + " ".join(f"{c:>11}" for c in columns))
    for gold, row in report["confusion"].items():
        lines.append(f"{gold:<5} " + " ".join(f"{row[c]:>11}" for c in columns))
    return "\n".join(lines)

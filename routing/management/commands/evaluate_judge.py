import json

from django.core.management.base import BaseCommand, CommandError

from routing.judges import DEFAULT_JUDGE, JudgeError
from routing.evaluation import evaluate_judge
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
        parser.add_argument("--calibrate", action="store_true",
                            help="fit the judge's calibration on the gold labels; report Brier, log loss and ECE "
                                 "before and after (after: 5-fold cross-fitted)")
        parser.add_argument("--no-ties", action="store_true",
                            help="a schema without ties: leave out tie-gold pairs; the judge never answers tie")

    def handle(self, *args, path, judge, judge_file, limit, batch_size, format, calibrate, no_ties, **options):
        try:
            pairs = read_labelled_pairs(path, judge_file, judge_name=judge, limit=limit)
            judge_options = {"batch_size": batch_size} if batch_size else {}
            report = evaluate_judge(judge_for_pairs(judge, pairs, **judge_options), pairs, calibrate=calibrate,
                                    allow_ties=not no_ties).to_dict()
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
    lines += _bias_lines(report.get("position_bias")) + _calibration_lines(report.get("calibration"))
    return "\n".join(lines)


def _bias_lines(bias) -> list[str]:
    if not bias:
        return []
    lines = ["position bias (both orders with probabilities; combining the orders cancels it)",
             f"{'category':<24} {'n':>5} {'flip rate':>10} {'first shown':>12} {'a, ab only':>11} {'a, combined':>12}"]
    for name, row in [("all", bias["overall"]), *bias["by_category"].items()]:
        lines.append(f"{name[:24]:<24} {row['n']:>5} {_percent(row['flip_rate']):>10} "
                     f"{_percent(row['first_shown_rate']):>12} {_percent(row['a_rate_one_order']):>11} "
                     f"{_percent(row['a_rate_combined']):>12}")
    return lines


def _calibration_lines(calibration) -> list[str]:
    if not calibration:
        return []
    if "error" in calibration:
        return [f"calibration: {calibration['error']}"]
    before, after = calibration["before"], calibration["after"]
    lines = [f"calibration against people on {calibration['n']} pairs ({'with' if calibration['allow_ties'] else 'no'}"
             f" ties; people's tie rate {_percent(calibration['human_tie_rate'])}; after = 5-fold cross-fitted)",
             f"{'':<8} {'Brier':>7} {'log loss':>9} {'ECE':>7} {'accuracy':>9}"]
    for name, scores in (("before", before), ("after", after)):
        lines.append(f"{name:<8} {scores['brier']:>7.3f} {scores['log_loss']:>9.3f} {scores['ece']:>7.3f} "
                     f"{_percent(scores['accuracy']):>9}")
    lines.append(f"always a: {_percent(calibration['always_a_accuracy'])}")
    lines.append("reliability after (confidence bin: count, mean confidence, accuracy): " + "; ".join(
        f"{b['low']:.1f}-{b['high']:.1f}: {b['count']}, {b['confidence']:.2f}, {b['accuracy']:.2f}"
        for b in after["reliability"] if b["count"]))
    return lines

import json

from django.core.management.base import BaseCommand, CommandError

from routing.judges import JudgeError
from routing.judges.files import LabelledFileError, judge_for_pairs, read_labelled_pairs
from routing.policies import POLICIES, PolicyError
from routing.simulation import DEFAULT_BUDGETS, simulate_routing, simulation_items


def _budgets(value: str) -> list[float]:
    try:
        budgets = [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"--budgets takes fractions separated by commas, got {value!r}") from None
    if not budgets or any(not 0 <= b <= 1 for b in budgets):
        raise CommandError("--budgets are fractions between 0 and 1")
    return budgets


class Command(BaseCommand):
    help = ("Replay routing on a file whose items carry several human verdicts and a judge's verdict: "
            "accuracy against the human majority at each human budget, beside random routing. "
            "Reads files only; needs no database.")
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--judge", required=True,
                            help="the judge whose verdicts the file (or --judge-file) carries; "
                                 "otherwise a judge spec (smollm2, model:/dir, ...) run on the file first")
        parser.add_argument("--judge-file", help="verdicts to replay, e.g. PandaLM's GPT-3.5 verdicts (matched by idx)")
        parser.add_argument("--policy", required=True, choices=sorted(POLICIES))
        parser.add_argument("--budgets", default=",".join(str(b) for b in DEFAULT_BUDGETS),
                            help="human budgets as fractions, comma separated (default 0,0.1,...,1)")
        parser.add_argument("--seeds", type=int, default=5, help="arrival orders the policy is averaged over")
        parser.add_argument("--random-seeds", type=int, default=20, help="runs the random baseline is averaged over")
        parser.add_argument("--batch-size", type=int, default=100,
                            help="items routed at a time; the learned policy refits between batches")
        parser.add_argument("--limit", type=int, help="only the first N items")
        parser.add_argument("--format", choices=("json", "text"), default="text")

    def handle(self, *args, path, judge, judge_file, policy, budgets, seeds, random_seeds, batch_size, limit,
               format, **options):
        if batch_size < 1 or seeds < 1 or random_seeds < 1:
            raise CommandError("--batch-size, --seeds and --random-seeds are at least 1")
        try:
            pairs = read_labelled_pairs(path, judge_file, judge_name=judge, limit=limit)
            items = simulation_items(pairs, judge_for_pairs(judge, pairs))
            curve = simulate_routing(items, policy, _budgets(budgets), seeds=seeds, random_seeds=random_seeds,
                                     batch_size=batch_size, judge_name=judge)
        except (OSError, ValueError, LabelledFileError, JudgeError, PolicyError) as error:
            raise CommandError(str(error)) from error
        if format == "json":
            self.stdout.write(json.dumps(curve.to_dict(), indent=2))
            return
        self.stdout.write(f"{policy} routing, judge {judge}, {curve.n} items, batches of {batch_size}: "
                          f"judge alone {curve.judge_accuracy:.3f}, one human each {curve.first_human_accuracy:.3f}")
        self.stdout.write("budget  humans  accuracy  random   difference")
        for point in curve.curve:
            self.stdout.write(f"{point.budget:>6.2f}  {point.human_count:>6}  {point.accuracy:>8.3f}  "
                              f"{point.random_accuracy:>6.3f}  {point.accuracy - point.random_accuracy:>+10.3f}")

"""evaluate_judge and simulate_routing through call_command, on the sample files in data/.

No test here has database access: the commands read files only, and pytest-django would
fail any query.
"""

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

DATA = Path(__file__).parent / "data"
PANDALM = str(DATA / "pandalm-testset-sample.json")
GPT35 = str(DATA / "pandalm-gpt35-judge-sample.json")
DUET = str(DATA / "duet-sample.jsonl")
REPORT_KEYS = {"accuracy", "accuracy_no_ties", "order_consistency", "pairs_per_second", "confusion", "n"}


def _json(*args, **options) -> dict:
    out = StringIO()
    call_command(*args, format="json", stdout=out, **options)
    return json.loads(out.getvalue())


def test_evaluate_a_local_judge_on_pandalm(tiny_model_dir):
    report = _json("evaluate_judge", PANDALM, judge=f"model:{tiny_model_dir}", limit=4)
    assert REPORT_KEYS <= set(report)
    assert report["n"] == 4
    assert sum(sum(row.values()) for row in report["confusion"].values()) == 4
    assert 0.0 <= report["order_consistency"] <= 1.0 and report["pairs_per_second"] > 0


def test_evaluate_replayed_gpt35_verdicts_on_pandalm():
    report = _json("evaluate_judge", PANDALM, judge="gpt-3.5-turbo", judge_file=GPT35)
    # 30 items: 20 of GPT-3.5's ordinary answers, 5 ties and 5 garbage (counted wrong, not guessed)
    assert report["n"] == 30 and report["unparsable"] == 5
    assert report["order_consistency"] is None  # one order only
    assert report["confusion"]["a"]["unparsable"] + report["confusion"]["b"]["unparsable"] \
        + report["confusion"]["tie"]["unparsable"] == 5
    assert report["accuracy"] == pytest.approx(sum(report["confusion"][g][g] for g in ("a", "b", "tie")) / 30)


def test_evaluate_judgments_carried_in_duet_jsonl():
    report = _json("evaluate_judge", DUET, judge="house-judge")
    # "split" has two annotators who disagree: no majority, so no gold, so not scored
    assert report["n"] == 6 and report["skipped_without_gold"] == 1
    # gold: capital a, sum b, greeting tie, haiku a, list a (a, both_bad=tie, a), sunset b
    assert report["confusion"]["a"] == {"a": 1, "b": 1, "tie": 0, "unparsable": 1, "unsupported": 0}
    assert report["accuracy"] == pytest.approx(3 / 6)
    assert report["accuracy_no_ties"] == pytest.approx(3 / 5)


def test_a_text_judge_leaves_the_image_comparison_unsupported(tiny_model_dir):
    report = _json("evaluate_judge", DUET, judge=f"model:{tiny_model_dir}")
    assert report["confusion"]["b"]["unsupported"] == 1


def test_text_output_is_a_readable_table(tiny_model_dir):
    out = StringIO()
    call_command("evaluate_judge", PANDALM, judge="gpt-3.5-turbo", judge_file=GPT35, stdout=out)
    assert "accuracy" in out.getvalue() and "confusion" in out.getvalue()


def test_simulate_routing_on_pandalm_with_gpt35():
    result = _json("simulate_routing", PANDALM, judge="gpt-3.5-turbo", judge_file=GPT35, policy="uncertainty",
                   budgets="0,0.2,1", seeds=2, random_seeds=3, batch_size=10)
    assert result["policy"] == "uncertainty" and result["n"] == 30
    assert [p["budget"] for p in result["curve"]] == [0.0, 0.2, 1.0]
    assert [p["human_count"] for p in result["curve"]] == [0, 6, 30]
    assert all({"budget", "accuracy", "random_accuracy"} <= set(p) for p in result["curve"])
    # 6 humans go first to the 5 garbage verdicts: a clear gain over random at 20%
    assert result["curve"][1]["accuracy"] > result["curve"][1]["random_accuracy"]


def test_simulate_routing_with_the_learned_policy_on_duet_jsonl():
    result = _json("simulate_routing", DUET, judge="house-judge", policy="learned", budgets="0.5", batch_size=2)
    assert result["n"] == 6 and result["curve"][0]["human_count"] == 3


def test_bad_arguments_are_command_errors():
    with pytest.raises(CommandError, match="unknown judge"):
        call_command("evaluate_judge", PANDALM, judge="nonsense", stdout=StringIO())
    with pytest.raises(CommandError, match="budgets"):
        call_command("simulate_routing", PANDALM, judge="g", judge_file=GPT35, policy="random", budgets="0.5,2",
                     stdout=StringIO())


def test_commands_start_without_torch_or_sklearn():
    # manage.py must start fast: the judging libraries load only when a judge or a fit runs.
    code = ("import django, os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings_test'; django.setup();"
            "import routing.management.commands.evaluate_judge, routing.management.commands.simulate_routing;"
            "import routing.judges.local, routing.judges.openai_compatible, routing.simulation;"
            "print(sorted(m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules))")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert result.stdout.strip() == "[]"

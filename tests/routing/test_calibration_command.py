"""evaluate_judge --calibrate / --no-ties: calibration and position bias in the command's output."""

import json
from io import StringIO
from pathlib import Path

from django.core.management import call_command

REAL = Path(__file__).parent.parent / "data" / "real"
PANDALM, GPT35 = str(REAL / "pandalm-testset-v1.json"), str(REAL / "pandalm-gpt35-judge-v1.json")


def _run(*flags, format="json"):
    out = StringIO()
    call_command("evaluate_judge", PANDALM, "--judge", "gpt-3.5-turbo", "--judge-file", GPT35, "--format", format,
                 *flags, stdout=out)
    return out.getvalue()


def test_calibrate_reports_scores_before_and_after():
    report = json.loads(_run("--calibrate"))
    calibration = report["calibration"]
    assert calibration["n"] == 974 and calibration["allow_ties"]
    assert calibration["after"]["ece"] < calibration["before"]["ece"]
    assert calibration["after"]["brier"] < calibration["before"]["brier"]
    assert len(calibration["after"]["reliability"]) == 10


def test_no_ties_leaves_out_tie_gold_and_never_answers_tie():
    report = json.loads(_run("--calibrate", "--no-ties"))
    assert report["confusion"]["tie"] == {"a": 0, "b": 0, "tie": 0, "unparsable": 0, "unsupported": 0}
    assert sum(row["tie"] for row in report["confusion"].values()) == 0
    calibration = report["calibration"]
    assert calibration["calibration"]["classes"] == ["a", "b"]
    assert calibration["after"]["accuracy"] > calibration["always_a_accuracy"]


def test_text_output_has_the_calibration_table():
    text = _run("--calibrate", format="text")
    assert "Brier" in text and "ECE" in text and "before" in text and "after" in text and "reliability" in text

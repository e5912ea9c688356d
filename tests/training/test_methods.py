"""Training methods for noisy judgments (training.recipes.noise): the snapshot keeps every
judgment with its annotator, each method changes labels or weights as computed by hand, the
form, the API and `train` accept each method and refuse a bad one, and a tiny run of each
completes through the worker's code."""

import json
import random

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils.html import escape

from arena.errors import InvalidInput
from arena.models import System
from training import actions
from training.models import TrainingRun
from training.recipes import normalise_pairs
from training.recipes.noise import METHODS, method_pairs, pair_flip_rates, report_flip_rate, starting_reliability
from training.recipes.reliability import estimate_reliability

ANNOTATORS = ("good-1", "good-2", "always-a", "adversary")


def crowd_rows(n: int = 16, seed: int = 0) -> list[dict]:
    """Comparisons whose better answer holds the word "good"; two perfect annotators, one who
    always says A, one who is always wrong, and an automatic judge that is always right."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        truth = rng.choice("ab")
        good, bad = f"good answer {i}", f"bad answer {i}"
        a, b = (good, bad) if truth == "a" else (bad, good)
        wrong = "b" if truth == "a" else "a"
        rows.append({
            "id": f"q{i}", "prompt": f"Question {i}?",
            "a": {"system": "left", "text": a}, "b": {"system": "right", "text": b},
            "judgments": [
                {"annotator": "good-1", "verdict": truth}, {"annotator": "good-2", "verdict": truth},
                {"annotator": "always-a", "verdict": "a"}, {"annotator": "adversary", "verdict": wrong},
                {"judge": "judge-bot", "verdict": truth},
            ],
        })  # fmt: skip
    return rows


@pytest.fixture
def crowd_project(db, tmp_path, settings, tiny_model_dir):
    settings.TRAINING_RUNS_DIR = tmp_path / "runs"
    path = tmp_path / "crowd.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in crowd_rows()))
    call_command("import_comparisons", str(path), "--project", "crowd")
    System.objects.create(name="tiny-base", provider="transformers", provider_config={"model": str(tiny_model_dir)})
    return "crowd"


def request(method: str, kind: str = "dpo", **overrides):
    values = {"kind": kind, "project": "crowd", "base": "tiny-base", "max_steps": 2, "method": method,
              "recipe": {"training": {"batch_size": 2, "learning_rate": 1e-2},
                         "data": {"max_length": 32, "validation_fraction": 0.25, "mc_dropout_passes": 2}}}  # fmt: skip
    return actions.check_run_request(**{**values, **overrides})


# --- the snapshot -------------------------------------------------------------------------------


def test_snapshot_keeps_every_judgment_with_its_annotator_and_marks_judge_rows(crowd_project, tiny_model_dir):
    from annotation.export.selection import Selection, assess_selection

    run = actions.do_create_run(request("majority"), queue=False)
    _, rows = actions.snapshot_dataset(run)
    assert len(rows) == 16
    stored = [json.loads(line) for line in open(actions.run_dir(run) / "dataset.jsonl")]
    assert stored == rows
    report, selected = assess_selection(Selection.resolve(project="crowd"))
    index = {pk: i for i, pk in enumerate(report.judgments.comparisons)}
    for row in rows:
        votes = row["judgments"]
        assert len(votes) == 5 and row["label_source"] == "human"
        judge_rows = [vote for vote in votes if vote["source"] == "judge"]
        assert [vote["annotator"] for vote in judge_rows] == ["judge-bot"]
        people = [vote for vote in votes if vote["source"] == "human"]
        # people appear under the export's pseudonyms, never their names
        assert all(vote["annotator"].startswith("ann-") for vote in people)
        assert not {vote["annotator"] for vote in people} & set(ANNOTATORS)
        # the label is the truth (Dawid-Skene sees through the adversary), so the good ones prefer `chosen`
        assert row["chosen"].startswith("good")
        assert judge_rows[0]["prefers"] == "chosen"
        assert sorted(vote["prefers"] for vote in people).count("chosen") >= 2
        # label_error is one minus the quality report's posterior of the label
        from arena.models import Comparison

        pk = Comparison.objects.get(public_id=row["id"]).pk
        verdict = "a" if row["chosen"] == Comparison.objects.get(pk=pk).output_a.text else "b"
        expected = 1 - report.dawid_skene.posterior[index[pk], report.judgments.verdict_code(verdict)]
        assert row["label_error"] == pytest.approx(expected)
    # every annotator's reliability from the quality report rides with their judgments
    reliabilities = {vote["annotator"]: vote["reliability"] for row in rows for vote in row["judgments"]
                     if vote["source"] == "human"}  # fmt: skip
    assert sorted(reliabilities.values()) == pytest.approx(sorted(row.reliability for row in report.annotators))


# --- each method's labels and weights, by hand --------------------------------------------------


def hand_pairs():
    votes = [
        {"annotator": "g", "source": "human", "prefers": "chosen", "reliability": 0.9},
        {"annotator": "x", "source": "human", "prefers": "rejected", "reliability": 0.5},
        {"annotator": "t", "source": "human", "prefers": "tie"},
        {"annotator": "bot", "source": "judge", "prefers": "rejected"},
    ]
    return normalise_pairs([
        {"id": "c1", "prompt": "P1", "chosen": "A1", "rejected": "B1", "weight": 0.8, "label_error": 0.1,
         "judgments": votes},
        {"id": "c2", "prompt": "P2", "chosen": "A2", "rejected": "B2", "weight": 0.6, "label_error": 0.3},
    ])  # fmt: skip


def test_em_makes_one_pair_per_judgment_that_prefers_a_side():
    pairs = hand_pairs()
    expanded = method_pairs(pairs, "em")
    # c1: g as labelled, x reversed, the tie and the judge (source human) left out; c2 has no judgments
    assert [(p.annotator, p.chosen, p.rejected) for p in expanded] == [
        ("g", "A1", "B1"), ("x", "B1", "A1"), ("(unattributed)", "A2", "B2")]
    with_judges = normalise_pairs([{**pairs[0].__dict__, "judgments": [
        {"annotator": "bot", "source": "judge", "prefers": "rejected"}], "label_source": "all",
        "id": "c1"}])  # fmt: skip
    assert [(p.annotator, p.chosen) for p in method_pairs(with_judges, "em")] == [("bot", "B1")]
    assert starting_reliability(pairs) == {"g": 0.9, "x": 0.5}
    for name in ("majority", "soft", "rdpo", "upo"):
        assert method_pairs(pairs, name) == list(pairs)


def test_soft_and_rdpo_flip_rates_come_from_the_label_errors():
    pairs = hand_pairs()
    assert pair_flip_rates(pairs) == [0.1, 0.3]
    assert report_flip_rate(pairs) == pytest.approx(0.2)
    # a plain file without the report's estimate: soft falls back to 1 - weight, rdpo to the weights' estimate
    plain = normalise_pairs([{"prompt": "P", "chosen": "A", "rejected": "B", "weight": 0.75}])
    assert pair_flip_rates(plain) == [0.25] and report_flip_rate(plain) is None


def test_em_with_the_quality_reports_reliabilities_downweights_the_always_a_annotator():
    # given: the model prefers the truth with p = 0.9; g (0.9 by the report) is always right,
    # the always-A annotator x (0.5 by the report) is right on two of four pairs
    p = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.1])
    annotator = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # when: one EM iteration from each annotator's own prior, worth 4 pairs
    estimate = estimate_reliability(p, annotator, 2, prior_reliability=np.array([0.9, 0.5]), prior_strength=4,
                                    iterations=1)
    # then, by hand: E-step w = ρp / (ρp + (1-ρ)(1-p)); M-step ρ = (Σw + 4ρ0) / (n + 4)
    w_g = 0.81 / (0.81 + 0.01)
    w_x_right, w_x_wrong = 0.45 / 0.5, 0.05 / 0.5
    rho_g = (4 * w_g + 4 * 0.9) / 8
    rho_x = (2 * w_x_right + 2 * w_x_wrong + 4 * 0.5) / 8
    assert estimate.reliability == pytest.approx([rho_g, rho_x])
    # the final weights use the updated reliabilities: x's pairs count less than g's, its wrong ones least
    weights = estimate.pair_weights
    assert weights[:4] == pytest.approx([0.9 * rho_g / (0.9 * rho_g + 0.1 * (1 - rho_g))] * 4)
    assert weights[4] < weights[0] and weights[6] < 0.2


def test_rdpo_flip_rate_is_the_quality_reports_estimate(crowd_project, tiny_model_dir):
    run = actions.do_create_run(request("rdpo"), queue=False)
    assert run.recipe["training"]["losses"] == ["robust"] and run.recipe["training"]["method"] == "rdpo"
    assert actions.execute_run(run.pk) == "succeeded"
    run.refresh_from_db()
    rows = [json.loads(line) for line in open(run.artifacts["dataset"])]
    from training.recipes.pairs import split_by_prompt

    train = split_by_prompt(normalise_pairs(rows), 0.25).train
    assert run.metrics["flip_rate"] == pytest.approx(np.mean([pair.label_error for pair in train]))
    # overridable by hand
    fixed = actions.check_run_request(kind="dpo", project="crowd", base=str(tiny_model_dir), method="rdpo",
                                      flip_rate=0.2)  # fmt: skip
    assert fixed.recipe["training"]["flip_rate"] == 0.2


# --- choosing a method: rules, form, API, command -------------------------------------------------


@pytest.mark.parametrize("overrides, fragment", [
    ({"method": "vote"}, "method must be one of majority, soft, em, rdpo, upo; got 'vote'"),
    ({"kind": "reward", "method": "em"}, "method 'em' applies to dpo runs only; a reward run takes majority, soft, rdpo"),
    ({"kind": "reward", "method": "upo"}, "applies to dpo runs only"),
    ({"method": "soft", "filters": {"aggregate": "majority"}}, "choose the dawid-skene aggregation"),
    ({"method": "em", "filters": {"aggregate": "none"}}, "not none"),
    ({"method": "rdpo", "loss": "ipo"}, "sets the loss itself"),
    ({"method": "soft", "flip_rate": 0.1}, "flip_rate is rDPO's"),
    ({"method": "rdpo", "flip_rate": 0.5}, r"flip_rate must be in \[0, 0.5\)"),
])  # fmt: skip
def test_bad_method_requests_name_the_problem(crowd_project, tiny_model_dir, overrides, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        request(**{"method": "majority", **overrides})


@pytest.mark.parametrize("method", list(METHODS))
def test_api_accepts_each_method_and_stores_it(crowd_project, tiny_model_dir, researcher, client_for, method):
    client = client_for(researcher)
    created = client.post("/api/training/runs/", {"kind": "dpo", "project": "crowd", "base": str(tiny_model_dir),
                                                  "method": method}, format="json")  # fmt: skip
    assert created.status_code == 201, created.content
    assert created.json()["recipe"]["training"]["method"] == method
    assert TrainingRun.objects.get(pk=created.json()["id"]).recipe["training"]["method"] == method


def test_api_refuses_a_bad_method_naming_it(crowd_project, tiny_model_dir, researcher, client_for):
    client = client_for(researcher)
    body = {"kind": "dpo", "project": "crowd", "base": str(tiny_model_dir)}
    bad = client.post("/api/training/runs/", {**body, "method": "vote"}, format="json")
    assert bad.status_code == 400
    assert "method must be one of majority, soft, em, rdpo, upo; got 'vote'" in bad.content.decode()
    reward_em = client.post("/api/training/runs/", {**body, "kind": "reward", "method": "em"}, format="json")
    assert reward_em.status_code == 400 and "applies to dpo runs only" in reward_em.content.decode()
    assert not TrainingRun.objects.exists()


def test_dashboard_offers_each_method_and_shows_it_on_the_run_page(crowd_project, tiny_model_dir, researcher,
                                                                   client):
    client.force_login(researcher)
    page = client.get("/training/").content.decode()
    for name, method in METHODS.items():
        assert f'<option value="{name}"' in page and escape(method.help) in page
    form = {"kind": "dpo", "source": "project:crowd", "base": "tiny-base", "loss": "sigmoid", "adapter": "lora", "aggregate": "dawid-skene",
            "min_confidence": "0", "data_source": "human", "max_steps": "2"}  # fmt: skip
    response = client.post("/training/runs/", {**form, "method": "em"})
    assert response.status_code == 302, response.content.decode()[:2000]
    run = TrainingRun.objects.latest("pk")
    assert run.recipe["training"]["method"] == "em" and run.recipe["training"]["pair_weighting"] == "em"
    assert '<span id="method">em</span>' in client.get(f"/training/runs/{run.pk}/").content.decode()
    bad = client.post("/training/runs/", {**form, "method": "vote"})
    assert bad.status_code == 400 and "method must be one of majority, soft, em, rdpo, upo; got &#x27;vote&#x27;" in \
        bad.content.decode()
    reward_upo = client.post("/training/runs/", {**form, "kind": "reward", "method": "upo"})
    assert reward_upo.status_code == 400 and "applies to dpo runs only" in reward_upo.content.decode()


def test_train_command_takes_a_method(crowd_project, tiny_model_dir, capsys):
    call_command("train", "--kind", "dpo", "--project", "crowd", "--base", str(tiny_model_dir), "--method", "rdpo",
                 "--flip-rate", "0.1", "--format", "json")  # fmt: skip
    body = json.loads(capsys.readouterr().out)
    run = TrainingRun.objects.get(pk=body["id"])
    assert body["method"] == "rdpo" and run.recipe["training"]["flip_rate"] == 0.1
    with pytest.raises(CommandError, match="invalid choice: 'vote'"):
        call_command("train", "--kind", "dpo", "--project", "crowd", "--method", "vote")
    with pytest.raises(CommandError, match="applies to dpo runs only"):
        call_command("train", "--kind", "reward", "--project", "crowd", "--base", str(tiny_model_dir),
                     "--method", "em")  # fmt: skip


# --- one tiny run of each ------------------------------------------------------------------------


@pytest.mark.parametrize("kind, method", [
    ("dpo", "majority"), ("dpo", "soft"), ("dpo", "em"), ("dpo", "rdpo"), ("dpo", "upo"),
    ("reward", "soft"), ("reward", "rdpo"),
])  # fmt: skip
def test_a_tiny_run_of_each_method_completes(crowd_project, tiny_model_dir, kind, method):
    run = actions.do_create_run(request(method, kind=kind), queue=False)
    assert actions.execute_run(run.pk) == "succeeded", TrainingRun.objects.get(pk=run.pk).error
    run.refresh_from_db()
    assert run.metrics["heldout_accuracy"] is not None and run.metrics["steps"] == 2
    if method == "em":
        # the real annotators, by pseudonym, and the adversary's reliability below the good ones'
        reliability = run.metrics["annotator_reliability"]
        assert len(reliability) == 4 and all(name.startswith("ann-") for name in reliability)
        assert min(reliability.values()) < 0.5 < max(reliability.values())
    if method == "upo":
        # 25% of the training pairs, scored by a reward model trained inside the run
        n_filtered = run.metrics["n_filtered_uncertain"]
        assert n_filtered >= 2 and n_filtered == int(0.25 * (run.metrics["n_train"] + n_filtered))
        assert (actions.run_dir(run) / "estimator" / "reward_model").is_dir()
    if method in ("rdpo",) or (method == "soft" and kind == "dpo"):
        assert run.metrics["flip_rate"] is not None
    if kind == "reward" and method == "rdpo":
        assert 0 <= run.metrics["flip_rate"] < 0.5

"""The trainers on a tiny random Llama: a few steps each, sized for 2 shared CPU cores."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.training.conftest import easy_pairs
from training.recipes import normalise_pairs, train_dpo, train_reward_model
from training.recipes.dpo import build_dpo_trainer
from training.recipes.losses import LossParams
from training.recipes.reward import build_reward_trainer


def _trainable(model) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in model.named_parameters() if param.requires_grad}


def _assert_every_parameter_changed(before: dict, model) -> None:
    after = dict(model.named_parameters())
    unchanged = [name for name, value in before.items() if torch.equal(value, after[name].detach())]
    assert not unchanged, f"not updated: {unchanged}"


# LoRA's B matrices start at zero, so the A matrices get no gradient on the first step; the
# second step moves them.
STEPS = {"lora": 2, "full": 1}


@pytest.mark.parametrize("adapter", ["lora", "full"])
def test_a_dpo_step_changes_every_trainable_parameter(tiny_recipe, tmp_path, adapter):
    # given a DPO trainer on eight easy pairs
    recipe = tiny_recipe(adapter, max_steps=STEPS[adapter])
    trainer = build_dpo_trainer(normalise_pairs(easy_pairs(8)), recipe, tmp_path)
    before = _trainable(trainer.model)
    if adapter == "lora":
        assert before and all("lora_" in name for name in before)
    # when it steps
    trainer.train()
    # then every trainable tensor moved
    _assert_every_parameter_changed(before, trainer.model)


@pytest.mark.parametrize("adapter", ["lora", "full"])
def test_a_reward_model_step_changes_every_trainable_parameter(tiny_recipe, tmp_path, adapter):
    recipe = tiny_recipe(adapter, max_steps=STEPS[adapter])
    trainer = build_reward_trainer(normalise_pairs(easy_pairs(8)), recipe, tmp_path)
    before = _trainable(trainer.model)
    if adapter == "lora":
        assert any("score" in name for name in before)
        assert all("lora_" in name or "score" in name for name in before)
    trainer.train()
    _assert_every_parameter_changed(before, trainer.model)


def test_dpo_learns_the_marker_and_saves_a_model_the_arena_can_load(tiny_recipe, tmp_path):
    from arena.providers.localmodel import load_causal_lm

    # given easy pairs, a quarter of the prompts held out
    progress = []
    recipe = tiny_recipe(validation_fraction=0.25, max_steps=4)
    # when tuned
    result = train_dpo(easy_pairs(16), recipe, tmp_path, on_progress=progress.append)
    # then the loss fell, the held-out pairs are preferred, and every artifact is in place
    assert [(p.step, p.total_steps) for p in progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert progress[0].loss == pytest.approx(0.6931, abs=1e-3)  # log 2: policy = reference at step 1
    assert progress[-1].loss < progress[0].loss - 0.1
    assert result.metrics.n_pairs == result.n_validation > 0
    assert result.metrics.preference_accuracy == 1.0
    assert result.metrics.base_ranking_accuracy is not None
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    model, tokenizer = load_causal_lm(result.merged_dir, device="cpu")
    assert model.config.num_hidden_layers == 2
    stored = json.loads((tmp_path / "result.json").read_text())
    assert stored["metrics"]["preference_accuracy"] == 1.0 and stored["adapter"] == "lora"


def test_conversational_pairs_train_through_the_chat_template(tiny_recipe, tmp_path):
    from training.recipes.reward import tokenize_for_reward
    from training.recipes.runtime import load_tokenizer

    pairs = [{"prompt": [{"role": "user", "content": f"Question {i}?"}], "chosen": " good", "rejected": " bad"}
             for i in range(8)]
    # the reward model reads the rendered chat, ending on the assistant's end-of-turn token
    tokenizer = load_tokenizer(tiny_recipe().model.name_or_path)
    row = tokenize_for_reward(tokenizer, normalise_pairs(pairs[:1]), max_length=64)[0]
    assert tokenizer.decode(row["chosen_ids"]).rstrip().endswith("good<|im_end|>")
    # and DPO trains and evaluates on the same messages
    result = train_dpo(pairs, tiny_recipe(validation_fraction=0.25, max_length=64, max_steps=1), tmp_path)
    assert result.steps == 1 and result.metrics.n_pairs == result.n_validation > 0


@pytest.fixture(scope="module")
def reward_run(tiny_model_dir, tmp_path_factory):
    from training.recipes import TrainingRecipe

    recipe = TrainingRecipe.from_dict({
        "model": {"name_or_path": str(tiny_model_dir), "adapter": "lora", "device": "cpu", "lora_r": 4},
        "data": {"validation_fraction": 0.25, "max_length": 32},
        "training": {"batch_size": 4, "learning_rate": 1e-2, "warmup_ratio": 0.0, "max_steps": 4,
                     "reward_margin_scale": 0.5, "center_rewards_coefficient": 0.01},
    })
    progress = []
    result = train_reward_model(easy_pairs(16), recipe, tmp_path_factory.mktemp("rm"), on_progress=progress.append)
    return result, progress


def test_reward_model_learns_the_marker(reward_run):
    result, progress = reward_run
    assert progress[-1].loss < progress[0].loss - 0.1
    assert result.metrics.preference_accuracy == 1.0
    assert result.metrics.base_preference_accuracy is not None
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(result.merged_dir)
    assert model.config.num_labels == 1


@pytest.fixture(scope="module")
def weighted_trainer(tiny_model_dir, tmp_path_factory):
    """A WeightedDPOTrainer and one training batch with non-zero margins; float32, as the
    tests compare its arithmetic with TRL's to 1e-5 (a bf16 reference pass rounds at 1e-3)."""
    from training.recipes import TrainingRecipe

    recipe = TrainingRecipe.from_dict({
        "model": {"name_or_path": str(tiny_model_dir), "adapter": "lora", "device": "cpu", "lora_r": 4,
                  "precision": "fp32"},
        "data": {"validation_fraction": 0.0, "max_length": 32},
        "training": {"batch_size": 4, "micro_batch_size": 4, "pair_weighting": "fixed", "max_steps": 1},
    })
    trainer = build_dpo_trainer(normalise_pairs(easy_pairs(4)), recipe, tmp_path_factory.mktemp("w"))
    batch = next(iter(trainer.get_train_dataloader()))
    # The policy still equals the reference; shifting the reference makes the margins non-zero.
    batch["ref_chosen_logps"] = batch["ref_chosen_logps"] + torch.tensor([3.0, -2.0, 0.5, 8.0])
    return trainer, batch


@pytest.mark.parametrize("loss_type, flip_rate", [("sigmoid", 0.0), ("robust", 0.2), ("ipo", 0.0), ("hinge", 0.0)])
def test_duets_losses_match_trls_on_a_real_batch(weighted_trainer, loss_type, flip_rate):
    from trl import DPOTrainer

    trainer, batch = weighted_trainer
    trainer.pair_weighting.weights.fill_(1.0)
    # given TRL's loss for this loss type on the batch
    trainer.loss_types, trainer.loss_weights, trainer.label_smoothing = [loss_type], [1.0], flip_rate
    without_index = {key: value for key, value in batch.items() if key != "pair_index"}
    with torch.no_grad():
        trl_loss = DPOTrainer.compute_loss(trainer, trainer.model, without_index)
        # when Duet's registry computes it with unit weights
        trainer.loss_terms, trainer.loss_params = ((loss_type, 1.0),), LossParams(trainer.beta, flip_rate)
        duet_loss = trainer.compute_loss(trainer.model, dict(batch))
    # then they agree
    assert duet_loss.item() == pytest.approx(trl_loss.item(), rel=1e-5)


def test_evaluation_log_probs_match_trls_reference_log_probs(weighted_trainer):
    from training.recipes.evaluation import completion_logps

    # given TRL's precomputed reference log-probs of the training pairs (the policy is still the base)
    trainer, _ = weighted_trainer
    rows = trainer.train_dataset
    # when the evaluation computes them its own way
    logps = completion_logps(trainer.model, rows, trainer.processing_class.pad_token_id, max_length=32)
    # then they agree
    assert logps.chosen.tolist() == pytest.approx(rows["ref_chosen_logps"], rel=1e-4)
    assert logps.rejected.tolist() == pytest.approx(rows["ref_rejected_logps"], rel=1e-4)


def test_the_reference_pass_runs_the_policy_only_while_its_adapters_add_nothing(tiny_recipe, tmp_path):
    from trl import DPOTrainer

    from training.recipes.trainers import adapter_is_identity

    # given a LoRA trainer whose reference pass ran before any step (the policy, adapters untouched)
    trainer = build_dpo_trainer(normalise_pairs(easy_pairs(4)), tiny_recipe(max_steps=1, micro_batch_size=4),
                                tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    precomputed = torch.cat([batch.pop("ref_chosen_logps"), batch.pop("ref_rejected_logps")])
    with torch.no_grad():
        base = torch.cat(DPOTrainer.compute_ref_log_probs(trainer, trainer.model, batch))  # TRL: adapters off
    # then it matches TRL's reference exactly
    assert adapter_is_identity(trainer.model)
    assert precomputed.tolist() == pytest.approx(base.tolist(), abs=1e-5)
    # and once the adapters have moved, the reference is the base again, not the policy
    with torch.no_grad():
        for name, param in trainer.model.named_parameters():
            if "lora_B" in name:
                param.fill_(0.05)
    assert not adapter_is_identity(trainer.model)
    trainer._precomputing = True
    with torch.no_grad():
        again = torch.cat(trainer.compute_ref_log_probs(trainer.model, batch))
        policy = torch.cat(trainer._untouched_policy_logps(trainer.model, batch))
    assert again.tolist() == pytest.approx(base.tolist(), abs=1e-5)
    assert (policy - base).abs().max() > 1e-3


def test_pair_weights_scale_the_loss_and_weight_zero_pairs_contribute_nothing(weighted_trainer):
    trainer, batch = weighted_trainer
    trainer.loss_terms, trainer.loss_params = (("sigmoid", 1.0),), LossParams(trainer.beta)

    def loss_with(weights):
        trainer.pair_weighting.weights.copy_(torch.tensor(weights))
        with torch.no_grad():
            return trainer.compute_loss(trainer.model, dict(batch)).item()

    full = loss_with([1.0, 1.0, 1.0, 1.0])
    assert loss_with([0.5, 0.5, 0.5, 0.5]) == pytest.approx(full / 2)
    # pairs 1 and 3 weighted out: what is left is pairs 0 and 2 alone, over a batch of four
    only_0 = loss_with([1.0, 0.0, 0.0, 0.0])
    only_2 = loss_with([0.0, 0.0, 1.0, 0.0])
    assert loss_with([1.0, 0.0, 1.0, 0.0]) == pytest.approx(only_0 + only_2)
    assert loss_with([0.0, 0.0, 0.0, 0.0]) == 0.0
    # each pair's implicit reward margin β·Δ is recorded for EM; raising the reference's
    # log-prob of the chosen completion by s lowers Δ by s
    assert trainer.pair_margins[batch["pair_index"]].tolist() == pytest.approx(
        [-0.1 * 3.0, 0.1 * 2.0, -0.1 * 0.5, -0.1 * 8.0], abs=1e-5)


def test_posterior_weights_trust_the_model_as_much_as_the_annotator_deserves():
    from training.recipes.trainers import PosteriorWeights

    # given annotator x with reliability 0.6 and y with 0.9
    weighting = PosteriorWeights(["x", "y"], [0, 1, 0], prior_reliability=0.6, prior_strength=4)
    weighting.reliability = torch.tensor([0.6, 0.9])
    # when the model's implicit reward margins are 0 (no opinion), +2 and -2
    weights = weighting(torch.tensor([0, 1, 2]), torch.tensor([0.0, 2.0, -2.0]))
    # then the weight is the annotator's reliability updated by the model's preference σ(margin)
    p = torch.sigmoid(torch.tensor([2.0, -2.0]))
    assert weights[0].item() == pytest.approx(0.6)
    assert weights[1].item() == pytest.approx(0.9 * p[0] / (0.9 * p[0] + 0.1 * (1 - p[0])))
    assert weights[2].item() == pytest.approx(0.6 * p[1] / (0.6 * p[1] + 0.4 * (1 - p[1])))
    # and an M-step on confident margins moves each reliability toward its agreement
    weighting.update(torch.tensor([3.0, 3.0, -3.0]))
    assert weighting.updates == 1 and set(weighting.as_dict()) == {"x", "y"}


def test_em_lowers_the_weight_of_a_planted_flipping_annotator(tiny_recipe, tmp_path):
    # given annotators a and b labelling right and c labelling every pair the wrong way round
    pairs = easy_pairs(12, annotators="abc", flipped="c")
    # (one batch is one epoch; a weak prior, as c gives only four labels)
    recipe = tiny_recipe(pair_weighting="em", max_steps=4, batch_size=12, beta=0.5, em_prior_strength=1.0)
    # when trained with EM re-estimation after each epoch
    result = train_dpo(pairs, recipe, tmp_path)
    # then c is found less reliable than either of the others
    reliability = result.reliability
    assert set(reliability) == {"a", "b", "c"}
    assert reliability["c"] < min(reliability["a"], reliability["b"]) - 0.2


def test_should_stop_cancels_after_the_current_step(tiny_recipe, tmp_path):
    calls = []

    def should_stop():
        calls.append(1)
        return True

    result = train_dpo(easy_pairs(8), tiny_recipe(max_steps=5), tmp_path, should_stop=should_stop)
    assert result.cancelled and result.steps == 1 and len(calls) == 1
    assert result.merged_dir is None and not (tmp_path / "merged").exists()


def test_uncertainty_filter_drops_the_most_uncertain_fraction(reward_run):
    from training.recipes.config import DataSettings
    from training.recipes.uncertainty import drop_uncertain_pairs, score_uncertainty

    result, _ = reward_run
    pairs = normalise_pairs(easy_pairs(8))
    uncertainty = score_uncertainty(pairs, result.output_dir, passes=4, rate=0.3, max_length=32)
    assert uncertainty.shape == (8,) and (uncertainty > 0).all()  # dropout made the passes differ
    settings = DataSettings(uncertainty_filter_fraction=0.25, uncertainty_reward_model=result.output_dir,
                            mc_dropout_passes=4, mc_dropout_rate=0.3, max_length=32)
    kept, dropped = drop_uncertain_pairs(pairs, settings)
    assert dropped == 2 and len(kept) == 6
    assert [pair.pair_id for pair in kept] == sorted((pair.pair_id for pair in kept), key=int)


def test_a_checkpoint_carrying_a_gguf_quantization_config_still_loads_and_saves(tiny_model_dir, tmp_path):
    from training.recipes.runtime import load_policy

    # given a checkpoint whose config still says it came from GGUF
    copy = tmp_path / "from-gguf"
    shutil.copytree(tiny_model_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gguf"}
    (copy / "config.json").write_text(json.dumps(config))
    # when loaded for training
    model, _ = load_policy(copy)
    # then the config no longer carries it, so the model saves
    assert getattr(model.config, "quantization_config", None) is None
    model.save_pretrained(tmp_path / "saved")
    assert "quantization_config" not in json.loads((tmp_path / "saved" / "config.json").read_text())


@pytest.mark.slow
def test_smollm2_takes_two_lora_dpo_steps(smollm2_dir, tmp_path):
    from arena.providers.localmodel import load_causal_lm
    from training.recipes import TrainingRecipe

    pairs = [
        {"prompt": [{"role": "user", "content": f"Say something kind about the number {i}."}],
         "chosen": f"{i} is a wonderful number.", "rejected": f"{i} is boring."}
        for i in range(6)
    ]
    recipe = TrainingRecipe.from_dict({
        "model": {"name_or_path": str(smollm2_dir), "adapter": "lora", "device": "cpu"},
        "data": {"validation_fraction": 0.34, "max_length": 64},
        "training": {"batch_size": 2, "max_steps": 2},
    })
    result = train_dpo(pairs, recipe, tmp_path)
    assert result.steps == 2 and not result.cancelled
    assert result.metrics.n_pairs >= 1
    model, tokenizer = load_causal_lm(result.merged_dir, device="cpu")
    assert model.config.num_hidden_layers == 30

"""train_reward_model: a Bradley-Terry reward model through TRL's RewardTrainer."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .config import RecipeError, TrainingRecipe
from .noise import MethodError, check_method
from .pairs import PairSplit, PreferencePair, normalise_pairs, split_by_prompt
from .evaluation import reward_margins, reward_metrics
from .results import Phases, Progress, TrainResult, planned_steps, result_after_training, write_run_record
from .runtime import (
    Runtime,
    load_reward_backbone,
    lora_config,
    model_directory,
    release_freed_tensors,
    select_runtime,
    trainer_arguments,
)


def tokenize_for_reward(tokenizer, pairs: Sequence[PreferencePair], max_length: int,
                        margin_scale: float = 0.0) -> list[dict]:
    """Rows of chosen_ids / rejected_ids (prompt + completion), as TRL's RewardTrainer tokenizes.

    Over-long sequences keep their END: the reward is read at the last token, and the
    completions differ at the end, not in the shared prompt. (TRL would drop the pair.)
    """
    rows = []
    for pair in pairs:
        row = {
            "chosen_ids": _tokenize(tokenizer, pair.prompt, pair.chosen)[-max_length:],
            "rejected_ids": _tokenize(tokenizer, pair.prompt, pair.rejected)[-max_length:],
        }
        if margin_scale:
            # Vote strength: 0 for a split vote, 1 for a unanimous one.
            row["margin"] = margin_scale * (2 * pair.weight - 1)
        rows.append(row)
    return rows


def _tokenize(tokenizer, prompt, completion) -> list[int]:
    if isinstance(prompt, str):
        text = prompt + completion
        if not text.endswith(tokenizer.eos_token):
            text += tokenizer.eos_token
        return tokenizer(text=text)["input_ids"]
    return tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=True)["input_ids"]


def train_reward_model(
    pairs: Sequence[Mapping],
    recipe: TrainingRecipe | None = None,
    output_dir: str | Path = "reward-run",
    *,
    validation_pairs: Sequence[Mapping] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_phase: Callable[[str, int, int], None] | None = None,
) -> TrainResult:
    """Train r(x, y) on −log σ(r(c) − r(r) − margin) (+ centring); evaluate on held-out prompts.

    The held-out pairs are a split by prompt, or ``validation_pairs`` when given. Writes under
    ``output_dir``: ``adapter/`` (LoRA only), ``reward_model/`` (a full
    AutoModelForSequenceClassification checkpoint + tokenizer, one label), ``recipe.json``,
    ``result.json``. A cancelled run writes nothing and returns ``cancelled=True``.
    ``on_phase`` hears each phase (``results.Phases``; "reference" scores the held-out pairs
    with the untrained head), ``on_progress`` each optimiser step.
    """
    import torch

    from .trainers import ProgressCallback

    started = time.monotonic()
    recipe = recipe or TrainingRecipe()
    output_dir = Path(output_dir)
    phases = Phases(on_phase)
    release_freed_tensors()
    phases.start("loading")
    try:
        check_method(recipe.training.method, "reward")
    except MethodError as exc:
        raise RecipeError(f"training.method: {exc}") from None
    split = _split(pairs, validation_pairs, recipe)

    runtime = select_runtime(recipe.model)
    progress = ProgressCallback(on_progress, should_stop, accuracy_key="accuracy")
    trainer = build_reward_trainer(split.train, recipe, output_dir, runtime=runtime, callbacks=[progress])
    flip_rate = getattr(trainer, "flip_rate", None)
    tokenizer = trainer.processing_class
    held_out = split.validation if runtime.is_main else []  # evaluation is rank 0's alone
    validation_rows = tokenize_for_reward(tokenizer, held_out, recipe.data.max_length)
    score = _scorer(tokenizer, runtime.micro_batch(recipe.training), runtime)
    base_margins = None
    if validation_rows:
        phases.start("reference", len(validation_rows))
        base_margins = score(trainer.model, validation_rows, phases.advance)

    phases.start("training", planned_steps(trainer))
    trainer.train()
    result = result_after_training("reward", trainer, progress, runtime, output_dir, started,
                                   n_validation=len(validation_rows), flip_rate=flip_rate)
    if result.cancelled or not runtime.is_main:
        return result
    if validation_rows:
        phases.start("evaluation", len(validation_rows))
        result.metrics = reward_metrics(score(trainer.model, validation_rows, phases.advance), base_margins)
    phases.start("saving")
    with torch.no_grad():
        _save(trainer.model, tokenizer, runtime, output_dir, result)
    write_run_record(result, recipe, output_dir, started)
    return result


def build_reward_trainer(train_pairs: Sequence[PreferencePair], recipe: TrainingRecipe, output_dir: str | Path,
                         *, runtime: Runtime | None = None, callbacks=()):
    """TRL's RewardTrainer on AutoModelForSequenceClassification(num_labels=1), LoRA or full."""
    from transformers import PrinterCallback, set_seed
    from trl import RewardConfig

    from .noisy_reward import reward_trainer

    runtime = runtime or select_runtime(recipe.model)
    settings = recipe.training
    # The score head is initialised at load time, before RewardTrainer seeds anything.
    set_seed(settings.seed)
    model, tokenizer = load_reward_backbone(model_directory(recipe.model.name_or_path))
    rows = tokenize_for_reward(tokenizer, train_pairs, recipe.data.max_length, settings.reward_margin_scale)
    args = RewardConfig(
        **trainer_arguments(recipe, "reward", runtime, output_dir),
        max_length=None,  # already truncated, keeping the end
        center_rewards_coefficient=settings.center_rewards_coefficient,
    )
    trainer = reward_trainer(  # TRL's RewardTrainer, or its noisy-label variant for soft and rdpo
        train_pairs, recipe, rows,
        model=model,
        args=args,
        processing_class=tokenizer,
        callbacks=list(callbacks),
        peft_config=lora_config(recipe.model, "SEQ_CLS") if runtime.adapter == "lora" else None,
    )
    trainer.remove_callback(PrinterCallback)  # progress goes through on_progress, not stdout
    return trainer


def _scorer(tokenizer, batch_size: int, runtime: Runtime):
    def score(model, rows, on_batch=None):
        return reward_margins(model, rows, tokenizer.pad_token_id, batch_size, runtime.bf16, on_batch=on_batch)[0]

    return score


def _save(model, tokenizer, runtime: Runtime, output_dir: Path, result: TrainResult) -> None:
    if runtime.adapter == "lora":
        adapter_dir = output_dir / "adapter"
        model.save_pretrained(str(adapter_dir))
        tokenizer.save_pretrained(str(adapter_dir))
        result.model_dir = str(adapter_dir)
        model = model.merge_and_unload()
    merged_dir = output_dir / "reward_model"
    model.save_pretrained(str(merged_dir))
    tokenizer.save_pretrained(str(merged_dir))
    result.merged_dir = str(merged_dir)
    if result.model_dir is None:
        result.model_dir = str(merged_dir)


def _split(pairs, validation_pairs, recipe: TrainingRecipe) -> PairSplit:
    """A held-out split by prompt, or every pair for training and the given ones for evaluation."""
    if validation_pairs is None:
        return split_by_prompt(normalise_pairs(pairs), recipe.data.validation_fraction, recipe.data.split_seed)
    return PairSplit(train=normalise_pairs(pairs), validation=normalise_pairs(validation_pairs))

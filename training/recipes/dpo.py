"""train_dpo: the DPO family on preference pairs, through TRL's DPOTrainer."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .config import TRL_LOSSES, TrainingRecipe
from .pairs import (
    PairSplit,
    PreferencePair,
    annotator_codes,
    normalise_pairs,
    split_by_prompt,
    to_dataset,
)
from .evaluation import completion_logps, dpo_metrics
from .noise import method_pairs, pair_flip_rates, resolve_flip_rate, starting_reliability
from .results import Phases, Progress, planned_steps, TrainResult, result_after_training, write_run_record
from .runtime import (
    Runtime,
    load_policy,
    lora_config,
    model_directory,
    release_freed_tensors,
    select_runtime,
    shared_on_disk,
    trainer_arguments,
)


def train_dpo(
    pairs: Sequence[Mapping],
    recipe: TrainingRecipe | None = None,
    output_dir: str | Path = "dpo-run",
    *,
    validation_pairs: Sequence[Mapping] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_phase: Callable[[str, int, int], None] | None = None,
) -> TrainResult:
    """Tune a causal LM on preference pairs; save it, evaluate it on held-out prompts.

    The held-out pairs are a split by prompt (``recipe.data.validation_fraction``), or
    ``validation_pairs`` when given (then every pair in ``pairs`` trains). Writes under
    ``output_dir``: ``adapter/`` (LoRA) or ``model/`` (full), ``merged/`` (LoRA: the merged
    checkpoint + tokenizer; with full fine-tuning ``model/`` is that checkpoint), loadable by
    ``arena.providers.localmodel.load_causal_lm``, and ``recipe.json``, ``result.json``. A cancelled
    run writes nothing and returns ``cancelled=True``. ``on_phase`` hears each phase
    (``results.Phases``), ``on_progress`` each optimiser step.
    """
    import torch

    from .trainers import PosteriorWeights, ProgressCallback

    started = time.monotonic()
    recipe = recipe or TrainingRecipe()
    output_dir = Path(output_dir)
    phases = Phases(on_phase)
    release_freed_tensors()

    # Data
    phases.start("loading")
    split = _split(pairs, validation_pairs, recipe)
    train_pairs, n_filtered = split.train, 0
    if recipe.data.uncertainty_filter_fraction > 0:
        from .uncertainty import drop_uncertain_pairs, train_estimator

        def estimator(pairs_to_score):  # within the "loading" phase: the job knows no other name for it
            return train_estimator(pairs_to_score, recipe, output_dir / "estimator", should_stop)

        train_pairs, n_filtered = drop_uncertain_pairs(train_pairs, recipe.data, estimator)
    flip_rate = resolve_flip_rate(train_pairs, recipe)
    train_pairs = method_pairs(train_pairs, recipe.training.method)  # em: one pair per judgment

    # Model (loaded once: with LoRA the reference is the same model with its adapters off),
    # and the reference's log-probs: of the training pairs when precomputed, and of the
    # held-out pairs, before any step
    runtime = select_runtime(recipe.model)
    precompute = precomputes_reference(recipe, runtime, len(train_pairs))
    progress = ProgressCallback(on_progress, should_stop, accuracy_key="rewards/accuracies")
    trainer = build_dpo_trainer(
        train_pairs, recipe, output_dir, runtime=runtime, flip_rate=flip_rate, callbacks=[progress],
        on_reference_start=lambda: phases.start(
            "reference", (len(train_pairs) if precompute else 0) + len(split.validation)),
        # Each process reports its own share of the pairs.
        on_reference_batch=lambda n: phases.advance(min(n * runtime.processes, phases.total - phases.done)),
    )
    tokenizer = trainer.processing_class
    validation = reference_logps = None
    if split.validation:
        # TRL's own tokenization (a private method, pinned by the tests to trl 1.16), so the
        # evaluation sees exactly the tokens training would. Every process takes part (TRL's
        # dataset preparation waits for the others); only rank 0 evaluates.
        validation = trainer._prepare_dataset(to_dataset(split.validation), tokenizer, trainer.args, "validation")
    if validation is not None and runtime.is_main:
        if phases.phase != "reference":
            phases.start("reference", len(split.validation))
        reference_logps = _logps(trainer, validation, runtime, recipe, phases.advance)

    # Train
    phases.start("training", planned_steps(trainer))
    trainer.train()
    result = result_after_training(
        "dpo", trainer, progress, runtime, output_dir, started,
        n_validation=len(validation) if validation is not None else 0,
        n_filtered_uncertain=n_filtered, flip_rate=flip_rate,
    )
    if isinstance(getattr(trainer, "pair_weighting", None), PosteriorWeights):
        result.reliability = trainer.pair_weighting.as_dict()
    if result.cancelled or not runtime.is_main:
        return result

    # Evaluate, then save (rank 0)
    if validation is not None and len(validation):
        phases.start("evaluation", len(validation))
        result.metrics = dpo_metrics(_logps(trainer, validation, runtime, recipe, phases.advance),
                                     reference_logps, recipe.training.beta)
    phases.start("saving")
    with torch.no_grad():
        _save(trainer, tokenizer, runtime, output_dir, result)
    write_run_record(result, recipe, output_dir, started)
    return result


def _logps(trainer, rows, runtime: Runtime, recipe: TrainingRecipe, on_batch=None):
    return completion_logps(
        trainer.model, rows, pad_token_id=trainer.processing_class.pad_token_id,
        max_length=recipe.data.max_length, batch_size=runtime.micro_batch(recipe.training),
        bf16=runtime.bf16, on_batch=on_batch,
    )


def precomputes_reference(recipe: TrainingRecipe, runtime: Runtime, n_train: int) -> bool:
    """Whether the reference log-probs of every training pair are computed before training.

    Full fine-tuning: always, or a second copy of the model would sit in memory. LoRA: only
    when the run visits every pair (a whole epoch or more); otherwise the reference is the
    same model with its adapters off, run on each step's pairs, so a short run on many pairs
    (2 steps of 8 on 2,000) never pays a forward pass over all of them first.
    """
    if runtime.adapter == "full":
        return True
    settings = recipe.training
    pairs_visited = settings.max_steps * settings.batch_size * settings.gradient_accumulation_steps
    return settings.max_steps <= 0 or pairs_visited >= n_train


def dpo_config(recipe: TrainingRecipe, runtime: Runtime, output_dir: Path, flip_rate: float | None,
               precompute: bool = True):
    from trl import DPOConfig

    settings = recipe.training
    trl_terms = [(name, weight) for name, weight in settings.weighted_terms if name in TRL_LOSSES]
    if settings.needs_duet_loss:
        # WeightedDPOTrainer computes the loss; TRL's loss_type is then unused.
        trl_terms = [("sigmoid", 1.0)]
    micro_batch = runtime.micro_batch(settings)
    return DPOConfig(
        **trainer_arguments(recipe, "dpo", runtime, output_dir),
        beta=settings.beta,
        loss_type=[name for name, _ in trl_terms],
        loss_weights=[weight for _, weight in trl_terms],
        label_smoothing=flip_rate if flip_rate is not None and "robust" in settings.losses else 0.0,
        max_length=recipe.data.max_length,  # prompts are cut first (DuetDPOTrainer), then the completions' ends
        precompute_ref_log_probs=precompute,
        # The reference pass runs in the training's micro-batches: the same memory bound.
        precompute_ref_batch_size=micro_batch,
    )


def build_dpo_trainer(train_pairs: Sequence[PreferencePair], recipe: TrainingRecipe, output_dir: str | Path,
                      *, runtime: Runtime | None = None, flip_rate: float | None = None, callbacks=(),
                      on_reference_start: Callable[[], None] | None = None,
                      on_reference_batch: Callable[[int], None] | None = None):
    """The configured trainer, reference log-probs already computed when precomputed:
    DuetDPOTrainer (TRL's, with long prompts cut to their end), or WeightedDPOTrainer when the
    recipe needs Duet's loss (cDPO, per-pair weights)."""
    import torch
    from transformers import PrinterCallback

    from .losses import LossParams
    from .trainers import DuetDPOTrainer, ReliabilityCallback, WeightedDPOTrainer

    runtime = runtime or select_runtime(recipe.model)
    settings = recipe.training
    if flip_rate is None:
        flip_rate = resolve_flip_rate(train_pairs, recipe)
    model, tokenizer = load_policy(model_directory(recipe.model.name_or_path))
    precompute = precomputes_reference(recipe, runtime, len(train_pairs))
    args = dpo_config(recipe, runtime, Path(output_dir), flip_rate, precompute)  # joins the process group
    train_dataset = to_dataset(train_pairs)
    if runtime.processes > 1:
        train_dataset = shared_on_disk(train_dataset, Path(output_dir) / "launch" / "train-pairs")
    kwargs = dict(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=list(callbacks),
        # With LoRA and no ref_model, TRL's reference is this model with its adapters disabled.
        peft_config=lora_config(recipe.model, "CAUSAL_LM") if runtime.adapter == "lora" else None,
        max_prompt_length=recipe.data.prompt_budget,
        on_reference_start=on_reference_start,
        on_reference_batch=on_reference_batch,
    )
    if not settings.needs_duet_loss:
        trainer = DuetDPOTrainer(**kwargs)
    else:
        trainer = WeightedDPOTrainer(
            **kwargs,
            loss_terms=settings.weighted_terms,
            loss_params=LossParams(beta=settings.beta, flip_rate=flip_rate or 0.0),
            pair_weighting=_pair_weighting(train_pairs, settings, flip_rate),
            n_pairs=len(train_pairs),
            # soft: each pair's own ε, 1 - the posterior that its label is right.
            pair_flip_rates=torch.tensor(pair_flip_rates(train_pairs)) if settings.method == "soft" else None,
        )
        if settings.pair_weighting == "em":
            trainer.add_callback(ReliabilityCallback(trainer, settings.em_every_steps))
    trainer.remove_callback(PrinterCallback)  # progress goes through on_progress, not stdout
    return trainer


def _pair_weighting(train_pairs: Sequence[PreferencePair], settings, flip_rate: float | None):
    import torch

    from .trainers import FixedWeights, PosteriorWeights

    if settings.pair_weighting in ("posterior", "em"):
        names, codes = annotator_codes(train_pairs)
        prior = settings.prior_reliability(flip_rate)
        if settings.em_prior_reliability is None:
            # Each annotator starts at (and is pulled toward) the quality report's reliability.
            known = starting_reliability(train_pairs)
            prior = [known.get(name, prior) for name in names]
        return PosteriorWeights(names, codes, prior, settings.em_prior_strength)
    if settings.pair_weighting == "fixed":
        return FixedWeights(torch.tensor([pair.weight for pair in train_pairs]))
    return FixedWeights(torch.ones(len(train_pairs)))


def _save(trainer, tokenizer, runtime: Runtime, output_dir: Path, result: TrainResult) -> None:
    model = trainer.model
    if runtime.adapter == "lora":
        adapter_dir = output_dir / "adapter"
        model.save_pretrained(str(adapter_dir))
        tokenizer.save_pretrained(str(adapter_dir))
        model = model.merge_and_unload()
        result.model_dir = str(adapter_dir)
        merged_dir = output_dir / "merged"
    else:
        merged_dir = output_dir / "model"
        result.model_dir = str(merged_dir)
    model.save_pretrained(str(merged_dir))
    tokenizer.save_pretrained(str(merged_dir))
    result.merged_dir = str(merged_dir)


def _split(pairs, validation_pairs, recipe: TrainingRecipe) -> PairSplit:
    """A held-out split by prompt, or every pair for training and the given ones for evaluation."""
    if validation_pairs is None:
        return split_by_prompt(normalise_pairs(pairs), recipe.data.validation_fraction, recipe.data.split_seed)
    return PairSplit(train=normalise_pairs(pairs), validation=normalise_pairs(validation_pairs))

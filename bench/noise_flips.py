"""Benchmark: DPO under label noise, vanilla against the noise-aware variants.

A synthetic task a tiny random Llama learns in a few dozen CPU steps: there are good and bad
words, and the chosen completion holds two good words, the rejected one two bad ones, in new
combinations for every prompt. The Llama is build_tiny_model's shape (2 layers, width 64)
with a word-level vocabulary of ~70 tokens instead of SmolLM2's 49,152: with SmolLM2's
vocabulary the LM head is nearly all of a tiny model's cost, and this many runs would not fit
in five minutes. HH-RLHF is not used: SmolLM2 gets nowhere near a learnable held-out accuracy
on it within a few CPU minutes, so the methods' differences would drown in noise.

A share of the TRAINING labels is flipped at random (the held-out pairs stay clean); each
method trains for the same steps and is scored by its implicit-reward accuracy on the clean
held-out pairs:

  vanilla    sigmoid (DPO)
  robust     rDPO with ε set by hand to the true flip rate (the pairs carry no weights from
             which Duet could estimate it)
  cdpo       conservative DPO, same ε
  weighted   reliability-weighted DPO: each pair's loss times the posterior that its label is
             right, from the reliability 1 - ε and the model's current preference
  em         the same, with the reliability re-estimated by EM after every epoch (prior
             1 - ε worth 4 pairs); the flips are uniform, so all pairs form one group

Mean and spread over --seeds seeds (data, flips and initialisation all change). Prints a
table; not a test.

    .venv/bin/python bench/noise_flips.py [--rates 0.2 0.4] [--seeds 5] [--train-pairs 128] [--epochs 5]
                                    [--words 12] [--methods vanilla robust cdpo weighted em]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Two disjoint sets of single-token words; the model must learn which set each word is in.
WORDS = [
    "sun", "gold", "kind", "calm", "warm", "clean", "bright", "sweet", "fresh", "safe", "fair", "wise",
    "rot", "mud", "cruel", "loud", "cold", "dirty", "dark", "sour", "stale", "risky", "false", "dumb",
    "tree", "rock", "bird", "fish", "door", "lamp", "milk", "salt", "rain", "snow", "wind", "fire",
    "king", "ship", "road", "hill", "bell", "coin", "rope", "ring", "wolf", "bear", "frog", "duck",
]
METHODS = {
    "vanilla": {"losses": ["sigmoid"]},
    "robust": {"losses": ["robust"]},
    "cdpo": {"losses": ["cdpo"]},
    "weighted": {"losses": ["sigmoid"], "pair_weighting": "posterior"},
    "em": {"losses": ["sigmoid"], "pair_weighting": "em"},
}


def build_word_model(directory: Path, seed: int = 0) -> Path:
    """A tiny random Llama with a word-level tokenizer over exactly this task's words."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<pad>", "</s>"]
    words = ["Train", "Test", "item", "describe", "it", "and", ":", ".", *"0123456789", *WORDS]
    backend = Tokenizer(models.WordLevel({token: i for i, token in enumerate(specials + words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>",
                                        eos_token="</s>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def make_pairs(n: int, rng: random.Random, prefix: str, good: list[str], bad: list[str]) -> list[dict]:
    pairs = []
    for i in range(n):
        up, down = rng.sample(good, 2), rng.sample(bad, 2)
        pairs.append({"prompt": f"{prefix} {i}: describe it.", "chosen": f" {up[0]} and {up[1]}",
                      "rejected": f" {down[0]} and {down[1]}"})
    return pairs


def flip(pairs: list[dict], rate: float, rng: random.Random) -> list[dict]:
    """Swap chosen and rejected in exactly round(rate * n) randomly picked pairs."""
    flipped = set(rng.sample(range(len(pairs)), round(rate * len(pairs))))
    return [
        {**pair, "chosen": pair["rejected"], "rejected": pair["chosen"]} if i in flipped else pair
        for i, pair in enumerate(pairs)
    ]


def run(method: str, rate: float, seed: int, model_dir: Path, args, workdir: Path) -> float:
    from training.recipes import TrainingRecipe, train_dpo

    rng = random.Random(seed)
    words = rng.sample(WORDS, 2 * args.words)
    good, bad = words[: args.words], words[args.words:]
    train = flip(make_pairs(args.train_pairs, rng, "Train item", good, bad), rate, rng)
    held_out = make_pairs(args.eval_pairs, rng, "Test item", good, bad)
    recipe = TrainingRecipe.from_dict({
        "model": {"name_or_path": str(model_dir), "adapter": args.adapter, "device": "cpu"},
        "data": {"max_length": 32},
        "training": {**METHODS[method], "flip_rate": rate, "batch_size": args.batch_size,
                     "epochs": args.epochs, "learning_rate": args.learning_rate, "seed": seed, "beta": 0.1},
    })
    result = train_dpo(train, recipe, workdir / f"{method}-{rate}-{seed}", validation_pairs=held_out)
    return result.metrics.preference_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.2, 0.4])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--train-pairs", type=int, default=128)
    parser.add_argument("--eval-pairs", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    # Five epochs: enough for vanilla DPO to start fitting the flipped labels, which is where
    # the methods part ways; in one or two epochs all of them score ~99% here.
    parser.add_argument("--epochs", type=float, default=5)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--words", type=int, default=12, help="good words, and as many bad ones")
    parser.add_argument("--adapter", choices=["lora", "full"], default="full")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import torch

    # One intra-op thread by default: on the shared 2-core machine, two threads spinning
    # against other processes made a SmolLM2 forward 2-6x slower (4x128 tokens: 1.7 s on one
    # thread, 3.3-11 s on two) and a tiny model's step 50x slower.
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    table: dict[tuple[str, float], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="duet-noise-") as workdir:
        workdir = Path(workdir)
        model_dir = build_word_model(workdir / "tiny")
        for rate in args.rates:
            for method in args.methods:
                table[method, rate] = [run(method, rate, seed, model_dir, args, workdir)
                                       for seed in range(args.seeds)]
                print(f"  {method:<8} flip {rate:.0%}: {table[method, rate]}", file=sys.stderr, flush=True)

    print(f"tiny random Llama, {args.train_pairs} training pairs (flipped at random), {args.eval_pairs} clean "
          f"held-out pairs, {args.words}+{args.words} words, {args.epochs:g} epochs of batch {args.batch_size}, "
          f"{args.adapter} fine-tuning at lr {args.learning_rate:g}, "
          f"β 0.1; mean ± sd over {args.seeds} seeds")
    print(f"{'held-out accuracy':<20}" + "".join(f"{f'flip {rate:.0%}':>16}" for rate in args.rates))
    for method in args.methods:
        cells = []
        for rate in args.rates:
            scores = table[method, rate]
            spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
            cells.append(f"{statistics.mean(scores):.3f} ± {spread:.3f}")
        print(f"{method:<20}" + "".join(f"{cell:>16}" for cell in cells))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

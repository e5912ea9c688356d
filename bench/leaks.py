"""Benchmark: the identity-leak check on ordinary answers and on answers that do leak.

False positives: every distinct assistant turn of HH-RLHF's harmless-base test split
(chosen and rejected dialogues) and every distinct PandaLM response, 8,434 real answers
that name no system of the arena, checked against the leak words of three sets of systems
(each answer against the union of the set's words, as if any two of them could be in
the battle): Duet's demo systems, PandaLM's five, and six common hosted models.
Catch rate: sentences in which a system names itself or its maker.

Prints the rates for the check before this change (copied below as `old_*`, the word
list from each system's name parts of four letters or more) and for `arena.live.leaks`.
Prints figures; not a test.

    .venv/bin/python bench/leaks.py [--show 10]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from arena.demo import TEXT_SYSTEMS  # noqa: E402
from arena.live import leaks  # noqa: E402
from arena.models import System  # noqa: E402

DATA = ROOT / "tests" / "data" / "real"


def system(name: str, model: str = "", provider: str = "uploaded") -> System:
    return System(name=name, provider=provider, provider_config={"model": model} if model else {})


SYSTEM_SETS = {
    "demo (3 SmolLM2)": [system(name, "smollm2-135m-instruct", "transformers") for name, _, _ in TEXT_SYSTEMS],
    "PandaLM (5)": [system(name) for name in ("bloom-7b", "cerebras-gpt-6.7B", "llama-7b", "opt-7b", "pythia-6.9b")],
    "hosted (6)": [
        system("gpt-4o-mini", "gpt-4o-mini", "openai"),
        system("claude-3-5-haiku", "claude-3-5-haiku-20241022", "openai"),
        system("llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct", "openai"),
        system("mistral-7b-instruct", "mistralai/Mistral-7B-Instruct-v0.3", "openai"),
        system("gemma-2-2b-it", "google/gemma-2-2b-it", "openai"),
        system("qwen2.5-7b-instruct", "Qwen/Qwen2.5-7B-Instruct", "openai"),
    ],
}

# (sentence, the set whose battle it is in): a system naming itself, its family or maker.
LEAK_SENTENCES = [
    ("I am SmolLM, a small language model.", "demo (3 SmolLM2)"),
    ("Hi! I'm SmolLM2, trained by Hugging Face.", "demo (3 SmolLM2)"),
    ("As a model made by OpenAI, I can't browse the web.", "demo (3 SmolLM2)"),
    ("I am ChatGPT, a large language model.", "demo (3 SmolLM2)"),
    ("I'm Claude, an AI assistant made by Anthropic.", "demo (3 SmolLM2)"),
    ("I was developed by the HuggingFace team.", "demo (3 SmolLM2)"),
    ("This is smollm2-concise speaking.", "demo (3 SmolLM2)"),
    ("As a 135M parameter model I may make mistakes.", "demo (3 SmolLM2)"),
    ("I am LLaMA, a language model trained by Meta AI.", "PandaLM (5)"),
    ("I'm based on BLOOM-7B from BigScience.", "PandaLM (5)"),
    ("I am Pythia, trained by EleutherAI.", "PandaLM (5)"),
    ("This answer comes from OPT-7B.", "PandaLM (5)"),
    ("I am Cerebras-GPT.", "PandaLM (5)"),
    ("I am GPT-4o mini, OpenAI's small model.", "hosted (6)"),
    ("I'm Claude 3.5 Haiku.", "hosted (6)"),
    ("I'm Gemma, an open model from Google DeepMind.", "hosted (6)"),
    ("I am Qwen, created by Alibaba Cloud.", "hosted (6)"),
    ("As Mistral 7B, I answer briefly.", "hosted (6)"),
    ("I am Llama 3.1, built by Meta.", "hosted (6)"),
    ("As an AI developed by Google, I cannot share that.", "hosted (6)"),
    ("Vicuna here, fine-tuned by LMSYS.", "hosted (6)"),
    ("I am DeepSeek-V3.", "hosted (6)"),
    ("I was trained by Google.", "demo (3 SmolLM2)"),
    ("I'm a language model created by the team at Meta.", "demo (3 SmolLM2)"),
    ("I am Phi-3, a Microsoft model.", "demo (3 SmolLM2)"),
    ("Hello, I am gpt4.", "demo (3 SmolLM2)"),
]


# --- the check before this change (arena/live/checks.py) -------------------------------------
OLD_GENERIC = frozenset({"model", "chat", "instruct", "base", "demo", "system", "local", "uploaded", "tones",
                         "painter", "large", "small", "mini", "latest", "preview", "turbo", "http", "https"})  # fmt: skip
OLD_FAMILIES = {
    "smollm2": ("smollm", "smollm2", "hugging face", "huggingface"),
    "gpt": ("openai", "chatgpt", "gpt"),
    "llama": ("llama", "meta ai"),
    "claude": ("claude", "anthropic"),
    "gemini": ("gemini", "google"),
    "mistral": ("mistral",),
    "qwen": ("qwen", "alibaba"),
}


def _old_parts(text: str) -> set[str]:
    return {p for p in re.split(r"[\s_/.:@-]+", text.lower()) if len(p) >= 4 and not p.isdigit() and p not in OLD_GENERIC}


def old_leak_words(sys_: System) -> set[str]:
    model = str((sys_.provider_config or {}).get("model", ""))
    words = _old_parts(sys_.name) | _old_parts(model)
    haystack = f"{sys_.name} {model}".lower()
    for family, aliases in OLD_FAMILIES.items():
        if family in haystack:
            words |= set(aliases)
    return words


def old_find_leaks(text: str, words: set[str]) -> list[str]:
    lowered = text.lower()
    return [w for w in words if re.search(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])", lowered)]


# --- data -------------------------------------------------------------------------------------
def real_answers() -> list[str]:
    answers = set()
    with gzip.open(DATA / "hh-rlhf-harmless-base-test.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            for dialogue in (row["chosen"], row["rejected"]):
                for turn in dialogue.split("\n\nAssistant:")[1:]:
                    answers.add(turn.split("\n\nHuman:")[0].strip())
    for item in json.loads((DATA / "pandalm-testset-v1.json").read_text()):
        for key in ("response1", "response2"):
            if isinstance(item[key], str):
                answers.add(item[key].strip())
    answers.discard("")
    return sorted(answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=5, help="flagged answers to print per set (new check)")
    args = parser.parse_args()

    answers = real_answers()
    print(f"{len(answers)} distinct real answers (HH-RLHF assistant turns + PandaLM responses)\n")
    print(f"{'systems':<18} {'old flagged':>12} {'old FP':>8} {'new flagged':>12} {'new FP':>8}  words hit (new)")
    union_old, union_new = set(), set()
    for label, systems in SYSTEM_SETS.items():
        old_words = set().union(*(old_leak_words(s) for s in systems))
        old_hits = {a for a in answers if old_find_leaks(a, old_words)}
        new_hits = {}
        for answer in answers:
            found = leaks.find_leaks([answer], systems)
            if found:
                new_hits[answer] = found
        union_old |= old_hits
        union_new |= set(new_hits)
        words = Counter(word for found in new_hits.values() for word in found)
        print(f"{label:<18} {len(old_hits):>12} {len(old_hits) / len(answers):>8.2%} {len(new_hits):>12} "
              f"{len(new_hits) / len(answers):>8.2%}  {dict(words.most_common(6))}")  # fmt: skip
        for answer, found in list(new_hits.items())[: args.show]:
            start = min(answer.lower().find(word.split()[0]) for word in found)
            print(f"    {found}: …{answer[max(0, start - 60): start + 60]!r}…")
    print(f"{'any of the sets':<18} {len(union_old):>12} {len(union_old) / len(answers):>8.2%} {len(union_new):>12} "
          f"{len(union_new) / len(answers):>8.2%}")  # fmt: skip

    old_caught = new_caught = 0
    print(f"\nleak sentences: {len(LEAK_SENTENCES)}")
    for sentence, label in LEAK_SENTENCES:
        systems = SYSTEM_SETS[label]
        old = old_find_leaks(sentence, set().union(*(old_leak_words(s) for s in systems)))
        new = leaks.find_leaks([sentence], systems)
        old_caught += bool(old)
        new_caught += bool(new)
        print(f"  old {'caught' if old else 'MISSED':<6}  new {'caught' if new else 'MISSED':<6}  {sentence}  {new}")
    print(f"catch rate: old {old_caught}/{len(LEAK_SENTENCES)}, new {new_caught}/{len(LEAK_SENTENCES)}")


if __name__ == "__main__":
    main()

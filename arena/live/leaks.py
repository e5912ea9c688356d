"""Identity leaks: does an answer tell the voter which system wrote it?

A vote is anonymous only while the voter cannot tell the systems apart by name. An answer
leaks when it names a model family or its maker ("I am SmolLM", "as a model made by
OpenAI": a claimed identity biases the vote even when it is false, so the table below
applies whatever systems are in the battle, as FastChat's arena cleaning does), or the
parts of a system's own name that identify it: the parts that are not English words, and
version-like tokens ("smollm2", "135m", "7b"). Everyday words in a name ("concise" in
`smollm2-concise`) are not leak words: honest answers use them all the time. The whole
name, as written, still is.

Measured by `bench/leaks.py` on 8,433 real answers (HH-RLHF and PandaLM): 2 flagged.
"""

import functools
import gzip
import re
from pathlib import Path

from django.conf import settings

from arena.models import System

WORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "english-words.txt.gz"

# Model families and their makers. Names that ordinary answers use ("bloom", "falcon",
# "palm", "opt", "phi", "meta", "google") are listed only in forms they do not use; rarer
# ones ("llama", "gemini", "bard") stay: none occurs in bench/leaks.py's real answers.
FAMILIES: dict[str, tuple[str, ...]] = {
    "gpt": ("gpt", "gpt2", "gpt3", "gpt4", "chatgpt", "openai", "davinci"),
    "claude": ("claude", "anthropic"),
    "llama": ("llama", "llama2", "llama3", "meta ai", "meta llama", "facebook ai"),
    "mistral": ("mistral", "mixtral", "codestral", "mistral ai"),
    "gemini": ("gemini", "gemma", "bard", "lamda", "palm 2", "palm-2", "google ai", "google brain", "deepmind"),
    "qwen": ("qwen", "qwen2", "qwq", "alibaba", "tongyi", "qianwen"),
    "smollm": ("smollm", "smollm2", "hugging face", "huggingface"),
    "vicuna": ("vicuna", "lmsys", "fastchat"),
    "phi": ("phi-1", "phi-2", "phi-3", "phi-4"),
    "deepseek": ("deepseek",),
    "command": ("cohere", "command-r"),
    "grok": ("grok", "xai"),
    "pythia": ("pythia", "eleutherai", "gpt-neox", "gpt-j"),
    "bloom": ("bigscience",),
    "chatglm": ("chatglm", "zhipu"),
    "olmo": ("olmo", "tulu", "allenai", "allen ai"),
    "cerebras": ("cerebras",),
    "dbrx": ("dbrx", "databricks"),
    "yi": ("01.ai",),
    "nemotron": ("nemotron",),
    "stablelm": ("stablelm", "stability ai"),
    "open-assistant": ("open assistant", "openassistant", "laion"),
}
FAMILY_WORDS = frozenset(word for words in FAMILIES.values() for word in words)

# Makers whose names ordinary answers use all the time ("google it", "Microsoft Word"):
# they leak only as the maker of the one answering ("trained by Google", "Meta's model").
EVERYDAY_MAKERS = ("google", "meta", "microsoft", "amazon", "nvidia", "facebook")
_makers = "|".join(EVERYDAY_MAKERS)
MAKER_CONTEXT = re.compile(
    r"(?<![a-z0-9])(?:(?:made|built|developed|created|trained|designed|programmed|released|fine-tuned)\s+by\s+(?:the\s+)?"
    rf"(?:(?:team|engineers|researchers|developers|people)\s+(?:at|from|of)\s+)?(?P<by>{_makers})"
    rf"|(?P<owner>{_makers})(?:'s|’s)?\s+(?:ai|models?|language\s+models?|llms?|assistant|chatbot))"
    r"(?![a-z0-9])"
)

# Parts of names that say nothing about which system it is: roles, sizes in words,
# formats and training tags.
GENERIC_WORDS = frozenset({
    "model", "chat", "instruct", "base", "demo", "system", "local", "uploaded", "tones", "painter", "large", "small",
    "mini", "latest", "preview", "turbo", "http", "https", "www", "com", "llm", "sft", "dpo", "rlhf", "gguf", "ggml",
    "awq", "gptq", "mlx", "onnx", "fp16", "bf16", "fp32", "int4", "int8", "q2", "q3", "q4", "q5", "q6", "q8",
})  # fmt: skip

# A version-like token: letters and digits mixed ("7b", "135m", "v2", "4o"), not a plain number.
VERSION = re.compile(r"(?=.*\d)(?=.*[a-z])[a-z0-9.]+")


@functools.cache
def english_words() -> frozenset[str]:
    """Lower-case English words (SCOWL via Debian's wamerican; see arena/data/README.md)."""
    with gzip.open(WORDS_FILE, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip() for line in handle if line.strip())


def name_words(name: str) -> set[str]:
    """The parts of a system or model name that identify it, and the whole name."""
    name = name.strip().lower()
    if name.startswith(("/", "./", "~")):  # a local path: only the last part names the model
        name = name.rstrip("/").rsplit("/", 1)[-1]
    words = set()
    parts = [part.strip(".") for part in re.split(r"[\s_/:@-]+", name)]
    for part in parts:
        if not part or part in GENERIC_WORDS or part.replace(".", "").isdigit():
            continue
        if VERSION.fullmatch(part) or (len(part) >= 3 and part.isalpha() and part not in english_words()):
            words.add(part)
    if len([part for part in parts if part]) > 1 or words:
        words.add(name)
    return words


def leak_words(system: System) -> set[str]:
    """Words whose presence in an answer tells the voter which system this is (or claims
    to be): the family table, the identifying parts of the system's name and model, and
    the configured DUET_LEAK_WORDS."""
    model = str((system.provider_config or {}).get("model", ""))
    words = set(FAMILY_WORDS) | name_words(system.name) | (name_words(model) if model else set())
    return words | {word.lower() for word in settings.LEAK_WORDS}


def _spacing(phrase: str) -> str:
    return re.sub(r"[\s_-]+", " ", phrase)


@functools.lru_cache(maxsize=64)
def _pattern(words: frozenset[str]) -> re.Pattern:
    # Longest first, so "hugging face" is reported rather than a shorter word inside it;
    # a space in a phrase matches any run of spaces, hyphens or underscores.
    alternatives = [re.escape(word).replace(r"\ ", r"[\s_-]+") for word in sorted(words, key=lambda w: (-len(w), w))]
    return re.compile(rf"(?<![a-z0-9])(?:{'|'.join(alternatives)})(?![a-z0-9])")


def find_leaks(texts: list[str], systems: list[System]) -> list[str]:
    """The leak words that occur, as whole words, in any of the texts."""
    words = set().union(*(leak_words(system) for system in systems))
    spelled = {_spacing(word): word for word in words}  # "hugging-face" is reported as "hugging face"
    pattern = _pattern(frozenset(words))
    found = set()
    for text in texts:
        lowered = text.lower()
        found.update(spelled.get(_spacing(match.group(0)), match.group(0)) for match in pattern.finditer(lowered))
        found.update(match.group("by") or match.group("owner") for match in MAKER_CONTEXT.finditer(lowered))
    return sorted(found)

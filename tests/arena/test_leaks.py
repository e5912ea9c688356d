"""The identity-leak check: catches an answer that names its system, family or maker, and
leaves ordinary answers alone (measured on 8,433 real ones)."""

import gzip
import json
from pathlib import Path

import pytest

from arena.demo import TEXT_SYSTEMS
from arena.live.leaks import english_words, find_leaks, leak_words, name_words
from arena.models import System

REAL = Path(__file__).resolve().parents[1] / "data" / "real"


def demo_systems() -> list[System]:
    return [System(name=name, provider="transformers", provider_config={"model": "smollm2-135m-instruct", **config})
            for name, _, config in TEXT_SYSTEMS]  # fmt: skip


def pandalm_systems() -> list[System]:
    return [System(name=name) for name in ("bloom-7b", "cerebras-gpt-6.7B", "llama-7b", "opt-7b", "pythia-6.9b")]


def hosted_systems() -> list[System]:
    models = {"gpt-4o-mini": "gpt-4o-mini", "claude-3-5-haiku": "claude-3-5-haiku-20241022",
              "llama-3.1-8b-instruct": "meta-llama/Llama-3.1-8B-Instruct", "gemma-2-2b-it": "google/gemma-2-2b-it",
              "mistral-7b-instruct": "mistralai/Mistral-7B-Instruct-v0.3", "qwen2.5-7b-instruct": "Qwen/Qwen2.5-7B-Instruct"}  # fmt: skip
    return [System(name=name, provider="openai", provider_config={"model": model}) for name, model in models.items()]


def real_answers() -> list[str]:
    """Every distinct assistant turn of HH-RLHF (chosen and rejected) and PandaLM response."""
    answers = set()
    with gzip.open(REAL / "hh-rlhf-harmless-base-test.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            for dialogue in (row["chosen"], row["rejected"]):
                answers.update(turn.split("\n\nHuman:")[0].strip() for turn in dialogue.split("\n\nAssistant:")[1:])
    for item in json.loads((REAL / "pandalm-testset-v1.json").read_text()):
        answers.update(item[key].strip() for key in ("response1", "response2") if isinstance(item[key], str))
    answers.discard("")
    return sorted(answers)


def test_everyday_words_in_a_system_name_are_not_leak_words():
    # the reported case: "concise" is part of smollm2-concise, and honest answers use it
    systems = demo_systems()
    assert find_leaks(["Here is a clear, concise answer, structured in three playful steps."], systems) == []
    words = leak_words(systems[0])
    assert {"smollm2", "smollm", "hugging face", "135m", "smollm2-concise"} <= words
    assert not {"concise", "instruct"} & words


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("I am SmolLM, trained by Hugging Face.", ["hugging face", "smollm"]),
        ("Hi, I'm smollm2-concise!", ["smollm2-concise"]),
        ("As a 135M-parameter model I may be wrong.", ["135m"]),
        ("As a model made by OpenAI, I cannot browse.", ["openai"]),
        ("I'm ChatGPT.", ["chatgpt"]),
        ("I am Claude, from Anthropic.", ["anthropic", "claude"]),
        ("I am LLaMA, built by Meta.", ["llama", "meta"]),
        ("I was trained by Google.", ["google"]),
        ("I'm a Microsoft model called Phi-3.", ["microsoft", "phi-3"]),
        ("Powered by the HuggingFace team", ["huggingface"]),
        ("I'm Qwen, made by Alibaba Cloud.", ["alibaba", "qwen"]),
        ("Mistral here.", ["mistral"]),
    ],
)
def test_an_answer_naming_its_system_family_or_maker_is_caught(answer, expected):
    # the family table applies whatever systems are in the battle: a claimed identity biases the vote too
    assert find_leaks([answer], demo_systems()) == expected


def test_names_of_the_systems_in_the_battle_are_caught_whatever_their_parts(settings):
    settings.LEAK_WORDS = ["acme"]
    systems = [System(name="tiny-alpha"), System(name="bloom-7b"), System(name="gpt-4o")]
    assert find_leaks(["I am tiny-alpha, hello!"], systems) == ["tiny-alpha"]
    assert find_leaks(["A tiny alpha particle."], systems) == []  # every part is everyday English
    assert find_leaks(["I am BLOOM-7B."], systems) == ["bloom-7b"]
    assert find_leaks(["Flowers bloom in spring."], systems) == []
    assert find_leaks(["I am GPT-4o."], systems) == ["gpt-4o"]
    assert find_leaks(["As a model by ACME corp"], systems) == ["acme"]
    assert find_leaks(["gptx and smollmish are no words here"], systems) == []  # whole words only


def test_everyday_uses_of_maker_names_are_not_leaks():
    answers = ["You could just google it.", "Open it in Microsoft Word.", "A meta-analysis of 12 studies.",
               "Amazon ships it in two days.", "YouTube is owned by Google.", "Search on Google Maps."]  # fmt: skip
    assert find_leaks(answers, demo_systems()) == []


def test_name_words_of_paths_model_ids_and_versions():
    assert name_words("HuggingFaceTB/SmolLM2-135M-Instruct") == {
        "huggingfacetb", "smollm2", "135m", "huggingfacetb/smollm2-135m-instruct"
    }  # fmt: skip
    assert name_words("/tmp/pytest/tiny-llama/model") == set()  # a local path: its last part, generic here
    assert name_words("pythia-6.9b") == {"pythia", "6.9b", "pythia-6.9b"}
    assert name_words("qwen2.5-7b-instruct") == {"qwen2.5", "7b", "qwen2.5-7b-instruct"}
    assert name_words("alpha") == set() and name_words("gpt-3.5-turbo") == {"gpt", "gpt-3.5-turbo"}
    # the shipped word list, not the system's /usr/share/dict, decides what is English
    assert {"concise", "structured", "bloom", "alpha"} <= english_words() and "smollm" not in english_words()


def test_false_positive_rate_on_real_answers():
    # given 8,433 real answers (HH-RLHF, PandaLM) that name no system of these arenas
    answers = real_answers()
    assert len(answers) == 8433
    systems = demo_systems() + pandalm_systems() + hosted_systems()
    # when each is checked against every system's leak words at once
    flagged = {answer: found for answer in answers if (found := find_leaks([answer], systems))}
    # then well under the 1% target: the check before this one flagged 52 (0.62%);
    # what is left are answers that mention an AI maker ("built by ... DeepMind")
    assert len(flagged) / len(answers) < 0.001, flagged


def test_a_live_vote_on_an_answer_using_a_name_word_stays_on_the_public_board(db, annotator, tiny_model_dir):
    import random

    from arena.voting import actions

    from arena.live import battles as live
    from arena.board.snapshots import default_arena, refresh_arena
    from arena.models import Battle, LiveGeneration

    # given a live battle between smollm2-concise and smollm2-playful, whose answers use those words
    config = {"model": str(tiny_model_dir), "max_new_tokens": 4, "temperature": 0}
    for name in ("smollm2-concise", "smollm2-playful"):
        System.objects.create(name=name, provider="transformers", provider_config=config)
    battle = live.start_live_battle(actions.judge_for_user(annotator), "text", "Explain tides.", rng=random.Random(0))
    for generation in LiveGeneration.objects.filter(battle=battle):
        live.run_live_generation(generation.pk)
    LiveGeneration.objects.filter(battle=battle, side="a").update(text="A clear, concise answer: the Moon pulls.")
    LiveGeneration.objects.filter(battle=battle, side="b").update(text="A playful one: the Moon tugs the sea!")
    # when the voter votes
    body, _ = live.vote_live(battle, "a")
    # then the vote is anonymous and counts on the public board
    assert body["anonymous"] is True and Battle.objects.get().anonymous is True
    assert refresh_arena(default_arena()) != []

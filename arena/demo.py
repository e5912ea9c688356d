"""The demo arena: three SmolLM2 text systems and procedural image and audio renderers."""

from django.conf import settings
from django.db import transaction

from .models import Modality, Prompt, PromptOrigin, Provider, System

TEXT_SYSTEMS = [
    ("smollm2-concise", "Answers briefly at low temperature.",
     {"system_prompt": "You are a concise assistant. Answer in at most three sentences.", "temperature": 0.3, "top_p": 0.9, "seed": 11}),
    ("smollm2-structured", "Prefers markdown structure: headers, lists, bold.",
     {"system_prompt": "You are a thorough assistant. Structure every answer with a markdown header, bullet lists and bold key terms.", "temperature": 0.7, "top_p": 0.95, "seed": 22}),
    ("smollm2-playful", "High temperature, playful tone.",
     {"system_prompt": "You are a playful, creative assistant who loves vivid examples.", "temperature": 1.0, "top_p": 0.95, "seed": 33}),
]  # fmt: skip

IMAGE_SYSTEMS = [
    ("painter-circles", {"style": "circles"}),
    ("painter-stripes", {"style": "stripes"}),
    ("painter-gradient", {"style": "gradient"}),
]
AUDIO_SYSTEMS = [
    ("tones-melody", {"style": "sine-melody"}),
    ("tones-chords", {"style": "chords"}),
    ("tones-arpeggio", {"style": "arpeggio"}),
]

TEXT_PROMPTS = [
    ("Explain why the sky is blue to a ten-year-old.", ["science"]),
    ("Give me three tips for writing a clear email.", ["writing"]),
    ("What is the difference between a list and a tuple in Python?", ["coding"]),
    ("Write a haiku about autumn rain.", ["creative"]),
    ("How do vaccines train the immune system?", ["science"]),
    ("Suggest a simple vegetarian dinner I can cook in 20 minutes.", ["everyday"]),
    ("What causes the seasons on Earth?", ["science"]),
    ("How should I prepare for a job interview?", ["advice"]),
    ("Explain recursion with a short example.", ["coding"]),
    ("Write a two-sentence horror story.", ["creative"]),
    ("Why do we need sleep?", ["science"]),
    ("What are the main causes of inflation?", ["economics"]),
    ("Give me a packing list for a weekend hiking trip.", ["everyday"]),
    ("How does a bicycle stay upright when moving?", ["science"]),
    ("Summarise the plot of Romeo and Juliet in three sentences.", ["literature"]),
    ("What is a good way to start learning to play the guitar?", ["advice"]),
    ("Explain what an API is to a non-programmer.", ["coding"]),
    ("Write a short motivational message for a student before exams.", ["creative"]),
    ("How can I reduce plastic waste at home?", ["everyday"]),
    ("What is the Pythagorean theorem and where is it used?", ["math"]),
]
IMAGE_PROMPTS = [
    "A sunset over a calm sea", "A forest in early spring", "A city skyline at night",
    "A bowl of ripe oranges", "Snowy mountains under a clear sky", "A field of lavender",
    "An abstract storm of colours", "A quiet harbour with boats", "A desert with red dunes",
    "Northern lights over a lake",
]  # fmt: skip
AUDIO_PROMPTS = [
    "A calm lullaby", "A cheerful morning tune", "A suspenseful theme", "A march for a parade",
    "Rain on a window, as music", "A victory fanfare", "A melancholic waltz", "A space adventure intro",
    "A playful children's song", "A slow meditation drone",
]  # fmt: skip


@transaction.atomic
def create_demo_records() -> dict[str, int]:
    """Create (or find) the demo systems and prompts; returns counts created."""
    created = {"systems": 0, "prompts": 0}

    def system(name, modality, provider, config, description):
        _, made = System.objects.get_or_create(
            name=name,
            defaults={"modality": modality, "provider": provider, "provider_config": config, "description": description},
        )
        created["systems"] += made

    for name, description, config in TEXT_SYSTEMS:
        system(name, Modality.TEXT, Provider.TRANSFORMERS, {"model": settings.DEMO_TEXT_MODEL, **config}, description)
    for name, config in IMAGE_SYSTEMS:
        system(name, Modality.IMAGE, Provider.DEMO_IMAGE, config, "Demo renderer: procedural Pillow drawings.")
    for name, config in AUDIO_SYSTEMS:
        system(name, Modality.AUDIO, Provider.DEMO_AUDIO, config, "Demo renderer: synthesised tones.")

    def prompt(text, modality, categories):
        _, made = Prompt.objects.get_or_create(
            text=text, modality=modality, defaults={"categories": categories, "origin": PromptOrigin.SEED}
        )
        created["prompts"] += made

    for text, categories in TEXT_PROMPTS:
        prompt(text, Modality.TEXT, categories)
    for text in IMAGE_PROMPTS:
        prompt(text, Modality.IMAGE, ["demo"])
    for text in AUDIO_PROMPTS:
        prompt(text, Modality.AUDIO, ["demo"])
    return created

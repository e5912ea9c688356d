"""The dashboard's "start a run" form, and the limits it shares with the API and `train`.

The form checks shape and ranges; `training.actions.check_run_request` then resolves names
and builds the recipe, and `training.selection.check_enough_pairs` counts the data, exactly
as for the API and the command.
"""

from __future__ import annotations

import math

from django import forms
from django.core.exceptions import ValidationError

from arena.models import Arena, Modality, Provider, System

from . import actions
from .models import RunKind
from .recipes.noise import DEFAULT_METHOD, METHODS

# A run longer than this is a typo for a smaller number on anything Duet trains on (SmolLM2
# at batch 8 takes ~2 s a step on a CPU: 100 000 steps are two days).
MAX_STEPS = (1, 100_000)
# Whole pairs per optimiser step; beyond 256 a 135M model's activations outgrow most GPUs.
BATCH_SIZE = (1, 256)
# Exclusive lower bound 0; a rate above 1 diverges at once with Adam.
MAX_LEARNING_RATE = 1.0


def check_max_steps(value: int) -> None:
    if not MAX_STEPS[0] <= value <= MAX_STEPS[1]:
        raise ValidationError(
            f"max steps must be between {MAX_STEPS[0]} and {MAX_STEPS[1]:,} (leave it empty for one epoch); got {value}"
        )


def check_batch_size(value: int) -> None:
    if not BATCH_SIZE[0] <= value <= BATCH_SIZE[1]:
        raise ValidationError(f"batch size must be between {BATCH_SIZE[0]} and {BATCH_SIZE[1]}; got {value}")


def check_learning_rate(value: float) -> None:
    if not (math.isfinite(value) and 0 < value <= MAX_LEARNING_RATE):
        raise ValidationError(f"learning rate must be greater than 0 and at most {MAX_LEARNING_RATE:g}; got {value:g}")


class StartRunForm(forms.Form):
    kind = forms.ChoiceField(choices=RunKind.choices, initial=RunKind.DPO)
    source = forms.ChoiceField(label="Data source")
    base = forms.ChoiceField(required=False, label="Base model")
    loss = forms.ChoiceField(
        choices=[(loss, loss) for loss in actions.LOSSES], initial="sigmoid",
        error_messages={"invalid_choice": f"loss must be one of {', '.join(actions.LOSSES)}; got %(value)r"},
    )  # fmt: skip
    max_steps = forms.IntegerField(
        required=False, validators=[check_max_steps],
        widget=forms.NumberInput(attrs={"placeholder": "one epoch", "min": MAX_STEPS[0], "max": MAX_STEPS[1]}),
    )  # fmt: skip
    learning_rate = forms.FloatField(
        required=False, validators=[check_learning_rate],
        widget=forms.NumberInput(attrs={"placeholder": "recipe default", "step": "any", "min": "0"}),
    )  # fmt: skip
    batch_size = forms.IntegerField(
        required=False, validators=[check_batch_size],
        widget=forms.NumberInput(attrs={"placeholder": "8", "min": BATCH_SIZE[0], "max": BATCH_SIZE[1]}),
    )  # fmt: skip
    adapter = forms.ChoiceField(
        choices=[("auto", "auto (LoRA on CPU, full on GPU)"), ("lora", "LoRA"), ("full", "full")], initial="auto"
    )
    aggregate = forms.ChoiceField(
        choices=[("dawid-skene", "Dawid-Skene"), ("majority", "majority"), ("none", "none")], initial="dawid-skene"
    )
    min_confidence = forms.FloatField(
        min_value=0, max_value=1, initial=0, label="Minimum confidence", widget=forms.NumberInput(attrs={"step": "0.05"})
    )
    data_source = forms.ChoiceField(
        choices=[("human", "humans"), ("judge", "automatic judges"), ("all", "both")], initial="human",
        label="Labels from",
    )  # fmt: skip
    include_ties = forms.BooleanField(required=False)
    method = forms.ChoiceField(
        choices=[(name, name) for name in METHODS], initial=DEFAULT_METHOD, label="Training method", required=False,
        error_messages={"invalid_choice": f"method must be one of {', '.join(METHODS)}; got %(value)r"},
    )  # fmt: skip
    flip_rate = forms.FloatField(
        required=False, min_value=0, label="Flip rate (rdpo)",
        widget=forms.NumberInput(attrs={"placeholder": "from the quality report", "step": "0.01", "min": "0",
                                        "max": "0.49"}),
    )  # fmt: skip

    @property
    def method_help(self) -> list[tuple[str, str]]:
        return [(name, f"{method.help} (For {' and '.join(method.kinds)} runs.)") for name, method in METHODS.items()]

    def clean_flip_rate(self):
        value = self.cleaned_data.get("flip_rate")
        if value is not None and not value < 0.5:
            raise ValidationError(f"flip rate must be at least 0 and below 0.5; got {value:g}")
        return value

    def __init__(self, *args, **kwargs):
        from annotation.models import Project

        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [
            *((f"project:{name}", f"project: {name}") for name in Project.objects.order_by("name").values_list("name", flat=True)),
            *((f"arena:{name}", f"arena: {name}") for name in Arena.objects.order_by("name").values_list("name", flat=True)),
        ]  # fmt: skip
        bases = System.objects.filter(provider=Provider.TRANSFORMERS, modality=Modality.TEXT).order_by("name")
        self.fields["base"].choices = [("", "SmolLM2-135M-Instruct (default)"),
                                       *((name, name) for name in bases.values_list("name", flat=True))]  # fmt: skip

    def request_arguments(self) -> dict:
        """Keyword arguments of `check_run_request`, from valid data."""
        data = self.cleaned_data
        kind_of_source, _, name = data["source"].partition(":")
        training = {key: data[key] for key in ("learning_rate", "batch_size") if data.get(key) is not None}
        return {
            "kind": data["kind"], "project": name if kind_of_source == "project" else None,
            "arena": name if kind_of_source == "arena" else None, "base": data["base"] or None,
            "loss": data["loss"], "max_steps": data["max_steps"], "adapter": data["adapter"],
            "filters": {"aggregate": data["aggregate"], "min_confidence": data["min_confidence"],
                        "include_ties": data["include_ties"], "source": data["data_source"]},
            "recipe": {"training": training} if training else None,
            "method": data.get("method") or DEFAULT_METHOD, "flip_rate": data.get("flip_rate"),
        }  # fmt: skip

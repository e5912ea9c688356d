"""Forms for the project pages. They turn form fields into the values the actions take;
the actions decide what is valid."""

from django import forms

from arena.models import Verdict

from .importers import FORMATS
from .models import MembershipRole, Project, RoutingPolicy
from .schema import AB, LIKERT, parse_schema

# The policies that send a budgeted share of the items to people (the others ignore the budget).
BUDGETED_POLICIES = (RoutingPolicy.RANDOM, RoutingPolicy.UNCERTAINTY, RoutingPolicy.LEARNED)
ROUTING_HELP = (
    "Who labels each imported item. human_only: every item goes to annotators. The others run the "
    "project's automatic judge first (set on the project's routing page) and send a share of the items "
    "to people: the human budget, a fraction of the items or a number of them."
)


def check_routing_budget(form: forms.Form, cleaned: dict) -> None:
    """A budget is a fraction or a count, never both; a budgeted policy needs one."""
    fraction, count = cleaned.get("human_budget_fraction"), cleaned.get("human_budget_count")
    if fraction is not None and not 0 <= fraction <= 1:
        form.add_error("human_budget_fraction", "A fraction is from 0 to 1 (0.2 sends a fifth of the items to people).")
    elif fraction is not None and count is not None:
        form.add_error("human_budget_count", "Give the human budget as a fraction or as a count, not both.")
    elif cleaned.get("routing_policy") in BUDGETED_POLICIES and fraction is None and count is None:
        form.add_error("human_budget_fraction", f"The {cleaned['routing_policy']} policy needs a human budget: "
                                                "a fraction (e.g. 0.2) or a count.")


ASPECTS_HELP = (
    "One aspect a line: a name, then 'likert' and the number of points (rated per side), or 'ab' "
    "(A / B / tie). Example: 'helpfulness likert 5', 'harmlessness ab'."
)


class ProjectForm(forms.ModelForm):
    verdicts = forms.MultipleChoiceField(
        choices=Verdict.choices, widget=forms.CheckboxSelectMultiple, initial=list(Verdict.values)
    )
    aspects = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text=ASPECTS_HELP)
    rationale_enabled = forms.BooleanField(required=False, label="Ask for a rationale")
    rationale_min_length = forms.IntegerField(min_value=0, max_value=2000, initial=0, label="Rationale minimum length")

    class Meta:
        model = Project
        fields = [
            "name", "description", "guidelines", "overlap", "min_seconds_per_item", "gold_fraction",
            "gold_warn_accuracy", "gold_block_accuracy", "gold_min_answers", "is_active",
            "routing_policy", "human_budget_fraction", "human_budget_count",
        ]  # fmt: skip
        widgets = {"guidelines": forms.Textarea(attrs={"rows": 8}), "description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {
            "guidelines": "Markdown, shown beside every task.",
            "routing_policy": ROUTING_HELP,
            "human_budget_fraction": "Share of the items that may go to people, from 0 to 1 (e.g. 0.2).",
            "human_budget_count": "Or: how many items may go to people in all.",
        }
        labels = {"human_budget_fraction": "Human budget (fraction)", "human_budget_count": "Human budget (count)"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["routing_policy"].required = False
        if self.instance.pk:
            schema = parse_schema(self.instance.schema)
            self.initial.update(
                verdicts=list(schema.verdicts),
                aspects="\n".join(
                    f"{a.name} {a.scale}" + (f" {a.points}" if a.scale == LIKERT else "") for a in schema.aspects
                ),
                rationale_enabled=schema.rationale_enabled,
                rationale_min_length=schema.rationale_min_length,
            )

    def clean_routing_policy(self):
        # Optional in a post (API clients and older forms leave it out): keep what the project has.
        return self.cleaned_data.get("routing_policy") or self.instance.routing_policy or RoutingPolicy.HUMAN_ONLY

    def clean(self):
        cleaned = super().clean()
        check_routing_budget(self, cleaned)
        return cleaned

    def clean_aspects(self):
        aspects = []
        for number, line in enumerate(self.cleaned_data["aspects"].splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            name, scale = parts[0].lower(), (parts[1].lower() if len(parts) > 1 else LIKERT)
            entry = {"name": name, "scale": scale}
            if scale == LIKERT and len(parts) > 2:
                if not parts[2].isdigit():
                    raise forms.ValidationError(f"line {number}: the number of points must be a whole number")
                entry["points"] = int(parts[2])
            elif scale not in (LIKERT, AB):
                raise forms.ValidationError(f"line {number}: the scale must be 'likert' or 'ab'")
            aspects.append(entry)
        return aspects

    def schema(self) -> dict:
        data = self.cleaned_data
        # Keep the order of the buttons the arena uses, whatever order the boxes were ticked.
        verdicts = [verdict for verdict in Verdict.values if verdict in data["verdicts"]]
        return {
            "verdicts": verdicts,
            "aspects": data["aspects"],
            "rationale": {"enabled": data["rationale_enabled"], "min_length": data["rationale_min_length"] or 0},
        }

    def project_fields(self) -> dict:
        fields = {name: self.cleaned_data[name] for name in self._meta.fields}
        fields["schema"] = self.schema()
        return fields


class ImportForm(forms.Form):
    file = forms.FileField(help_text=".jsonl, .json, .csv or .parquet (optionally .gz)")
    format = forms.ChoiceField(choices=[(name, name) for name in FORMATS], initial="duet")
    media_zip = forms.FileField(required=False, help_text="Zip of the files that rows name in a.media / b.media.")
    seed = forms.IntegerField(initial=0, required=False, help_text="Seed for the sides of HH-RLHF pairs.")


class MemberForm(forms.Form):
    username = forms.CharField()
    role = forms.ChoiceField(choices=MembershipRole.choices, initial=MembershipRole.ANNOTATOR)


class AdjudicateForm(forms.Form):
    verdict = forms.ChoiceField(choices=Verdict.choices)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

"""Forms for the project pages. They turn form fields into the values the actions take;
the actions decide what is valid."""

from django import forms

from arena.models import Verdict

from .importers import FORMATS
from .models import MembershipRole, Project
from .schema import AB, LIKERT, parse_schema

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
        ]  # fmt: skip
        widgets = {"guidelines": forms.Textarea(attrs={"rows": 8}), "description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"guidelines": "Markdown, shown beside every task."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
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

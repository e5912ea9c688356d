"""The routing settings form on a project's routing page: the project's policy and human
budget (annotation's fields, written by annotation.actions.update_project) and the routing
app's own settings (written by routing.actions.update_routing_settings)."""

from django import forms

from annotation.forms import ROUTING_HELP, check_routing_budget
from annotation.models import RoutingPolicy
from arena.errors import InvalidInput
from routing.policies.learned import MODELS

from .models import ProjectRouting
from .specs import check_judge_spec

JUDGE_HELP = ("smollm2 (default: SmolLM2-135M, verdict probabilities from one forward pass, both orders), "
              "generate-smollm2, model:/path/to/model, openai:MODEL (DUET_JUDGE_BASE_URL...), reward:RUN_ID "
              "(a finished reward-model run) or imported:NAME (verdicts an import brought).")


class RoutingSettingsForm(forms.Form):
    routing_policy = forms.ChoiceField(choices=[(value, f"{value}: {label}") for value, label in RoutingPolicy.choices],
                                       help_text=ROUTING_HELP)
    human_budget_fraction = forms.FloatField(required=False, min_value=0, max_value=1, label="Human budget (fraction)",
                                             help_text="e.g. 0.2: a fifth of the items go to people")
    human_budget_count = forms.IntegerField(required=False, min_value=0, label="Human budget (count)",
                                            help_text="or: this many items in all")
    judge_spec = forms.CharField(max_length=500, label="Judge", help_text=JUDGE_HELP)
    auto_route = forms.BooleanField(required=False, label="Route imported items automatically")
    seed = forms.IntegerField(help_text="for the random draws of the random and learned policies")
    batch_size = forms.IntegerField(min_value=1, max_value=512, help_text="comparisons per judge call")
    learned_model = forms.ChoiceField(choices=[(m, m) for m in MODELS], label="Learned policy: model")
    learned_min_train = forms.IntegerField(min_value=2, label="Learned policy: human-labelled items before fitting",
                                           help_text="until then it routes like uncertainty")
    learned_explore = forms.FloatField(min_value=0, max_value=1, label="Learned policy: exploration share",
                                       help_text="share of the budget spent on random items (unbiased training data)")

    def __init__(self, data=None, *, project, routing: ProjectRouting):
        options = routing.policy_options or {}
        initial = {
            "routing_policy": project.routing_policy, "human_budget_fraction": project.human_budget_fraction,
            "human_budget_count": project.human_budget_count, "judge_spec": routing.judge_spec,
            "auto_route": routing.auto_route, "seed": routing.seed, "batch_size": routing.batch_size,
            "learned_model": options.get("model", "logistic"), "learned_min_train": options.get("min_train", 30),
            "learned_explore": options.get("explore", 0.1),
        }  # fmt: skip
        super().__init__(data, initial=initial)

    def clean_judge_spec(self):
        try:
            return check_judge_spec(self.cleaned_data["judge_spec"])
        except InvalidInput as error:
            raise forms.ValidationError(error.message) from None

    def clean(self):
        cleaned = super().clean()
        check_routing_budget(self, cleaned)
        return cleaned

    def project_fields(self) -> dict:
        data = self.cleaned_data
        return {name: data[name] for name in ("routing_policy", "human_budget_fraction", "human_budget_count")}

    def routing_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "judge_spec": data["judge_spec"], "auto_route": data["auto_route"], "seed": data["seed"],
            "batch_size": data["batch_size"],
            "policy_options": {"model": data["learned_model"], "min_train": data["learned_min_train"],
                               "explore": data["learned_explore"]},
        }  # fmt: skip

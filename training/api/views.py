from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from arena.api.permissions import ModelPermissions
from arena.api.serializers import ErrorSerializer
from training import actions, results, selection
from training.forms import BATCH_SIZE, MAX_LEARNING_RATE, MAX_STEPS, check_batch_size, check_learning_rate, check_max_steps
from training.models import TrainingRun
from training.recipes.noise import DEFAULT_METHOD, METHODS


class TrainingRunSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="name", read_only=True)
    arena = serializers.SlugRelatedField(slug_field="name", read_only=True)
    base_system = serializers.SlugRelatedField(slug_field="name", read_only=True)
    produced_system = serializers.SlugRelatedField(slug_field="name", read_only=True)
    percent = serializers.SerializerMethodField()
    progress_text = serializers.SerializerMethodField(help_text="the progress as one line: phase, step, loss, memory")

    def get_percent(self, run) -> int:
        return results.percent(run.status, run.progress)

    def get_progress_text(self, run) -> str:
        return results.progress_line(run.status, run.progress)

    class Meta:
        model = TrainingRun
        fields = [
            "id", "kind", "status", "project", "arena", "data_filters", "base_system", "base_model", "loss",
            "recipe", "progress", "progress_text", "percent", "history", "metrics", "artifacts", "n_pairs", "produced_system",
            "error", "cancel_requested", "attempts", "claimed_by", "claimed_at", "heartbeat_at", "created_at",
            "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class StartRunSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["reward", "dpo"])
    project = serializers.CharField(required=False, allow_blank=True)
    arena = serializers.CharField(required=False, allow_blank=True)
    base = serializers.CharField(required=False, allow_blank=True, help_text="a system name or a model folder")
    loss = serializers.ChoiceField(choices=actions.LOSSES, default="sigmoid")
    max_steps = serializers.IntegerField(
        required=False, validators=[check_max_steps], help_text=f"{MAX_STEPS[0]} to {MAX_STEPS[1]}; absent: one epoch"
    )
    learning_rate = serializers.FloatField(
        required=False, validators=[check_learning_rate], help_text=f"above 0, at most {MAX_LEARNING_RATE:g}"
    )
    batch_size = serializers.IntegerField(
        required=False, validators=[check_batch_size], help_text=f"{BATCH_SIZE[0]} to {BATCH_SIZE[1]}"
    )
    adapter = serializers.ChoiceField(choices=actions.ADAPTERS, default="auto")
    method = serializers.ChoiceField(
        choices=list(METHODS), default=DEFAULT_METHOD,
        help_text=" ".join(f"{name}: {method.help}" for name, method in METHODS.items()),
        error_messages={"invalid_choice": f"method must be one of {', '.join(METHODS)}; got {{input!r}}"},
    )  # fmt: skip
    flip_rate = serializers.FloatField(
        required=False, min_value=0.0, max_value=0.49,
        help_text="rdpo only: the share of wrong labels; absent: the quality report's estimate",
    )
    filters = serializers.DictField(required=False, help_text="aggregate, min_confidence, include_ties, source")
    recipe = serializers.DictField(required=False, help_text="model / data / training groups of the recipe")

    def validate_recipe(self, recipe):
        """The recipe's own max_steps, batch_size and learning_rate are held to the same limits."""
        training = recipe.get("training") or {}
        if not isinstance(training, dict):
            raise serializers.ValidationError("recipe.training must be an object")
        checks = {"max_steps": check_max_steps, "batch_size": check_batch_size, "learning_rate": check_learning_rate}
        for key, check in checks.items():
            value = training.get(key)
            if value is None or (key == "max_steps" and value == -1):  # -1: the recipe's "epochs decide"
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise serializers.ValidationError(f"recipe.training.{key} must be a number")
            try:
                check(value)
            except DjangoValidationError as exc:
                raise serializers.ValidationError(f"recipe.training.{key}: {exc.messages[0]}") from None
        return recipe


class TrainingRunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Training runs: start one (researchers), watch its progress, cancel it."""

    queryset = TrainingRun.objects.select_related("project", "arena", "base_system", "produced_system")
    serializer_class = TrainingRunSerializer
    permission_classes = [ModelPermissions]

    @extend_schema(request=StartRunSerializer, responses={201: TrainingRunSerializer, 400: ErrorSerializer})
    def create(self, request, *args, **kwargs):
        data = StartRunSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = {key: value or None for key, value in data.validated_data.items()}
        recipe = dict(values.get("recipe") or {})
        training = {key: values[key] for key in ("learning_rate", "batch_size") if values.get(key) is not None}
        if training:
            recipe["training"] = {**(recipe.get("training") or {}), **training}
        run_request = actions.check_run_request(
            kind=values["kind"], project=values.get("project"), arena=values.get("arena"), base=values.get("base"),
            loss=values.get("loss") or "sigmoid", max_steps=values.get("max_steps"),
            adapter=values.get("adapter") or "auto", filters=values.get("filters"), recipe=recipe,
            method=values.get("method"), flip_rate=data.validated_data.get("flip_rate"),
        )  # fmt: skip
        selection.check_enough_pairs(run_request)
        run = actions.do_create_run(run_request, request.user)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: TrainingRunSerializer, 400: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None, format=None):  # noqa: A002 - DRF passes the format suffix
        run = actions.do_cancel_run(self.get_object())
        return Response(TrainingRunSerializer(run).data)

    @extend_schema(request=None, responses={202: TrainingRunSerializer, 400: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None, format=None):  # noqa: A002 - DRF passes the format suffix
        """Queue a failed or cancelled run again with the same settings (its next attempt)."""
        run = actions.do_retry_run(self.get_object())
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from arena.api.permissions import ModelPermissions
from arena.api.serializers import ErrorSerializer
from training import actions
from training.models import TrainingRun


class TrainingRunSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="name", read_only=True)
    arena = serializers.SlugRelatedField(slug_field="name", read_only=True)
    base_system = serializers.SlugRelatedField(slug_field="name", read_only=True)
    produced_system = serializers.SlugRelatedField(slug_field="name", read_only=True)
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id", "kind", "status", "project", "arena", "data_filters", "base_system", "base_model", "loss",
            "recipe", "progress", "percent", "history", "metrics", "artifacts", "n_pairs", "produced_system",
            "error", "cancel_requested", "heartbeat_at", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class StartRunSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["reward", "dpo"])
    project = serializers.CharField(required=False, allow_blank=True)
    arena = serializers.CharField(required=False, allow_blank=True)
    base = serializers.CharField(required=False, allow_blank=True, help_text="a system name or a model folder")
    loss = serializers.ChoiceField(choices=actions.LOSSES, default="sigmoid")
    max_steps = serializers.IntegerField(required=False, min_value=0)
    adapter = serializers.ChoiceField(choices=actions.ADAPTERS, default="auto")
    filters = serializers.DictField(required=False, help_text="aggregate, min_confidence, include_ties, source")
    recipe = serializers.DictField(required=False, help_text="model / data / training groups of the recipe")


class TrainingRunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Training runs: start one (researchers), watch its progress, cancel it."""

    queryset = TrainingRun.objects.select_related("project", "arena", "base_system", "produced_system")
    serializer_class = TrainingRunSerializer
    permission_classes = [ModelPermissions]

    def list(self, request, *args, **kwargs):
        actions.mark_stale_runs()
        return super().list(request, *args, **kwargs)

    @extend_schema(request=StartRunSerializer, responses={201: TrainingRunSerializer, 400: ErrorSerializer})
    def create(self, request, *args, **kwargs):
        data = StartRunSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = {key: value or None for key, value in data.validated_data.items()}
        run_request = actions.check_run_request(
            kind=values["kind"], project=values.get("project"), arena=values.get("arena"), base=values.get("base"),
            loss=values.get("loss") or "sigmoid", max_steps=values.get("max_steps"),
            adapter=values.get("adapter") or "auto", filters=values.get("filters"), recipe=values.get("recipe"),
        )  # fmt: skip
        run = actions.do_create_run(run_request, request.user)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: TrainingRunSerializer, 400: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None, format=None):  # noqa: A002 - DRF passes the format suffix
        run = actions.do_cancel_run(self.get_object())
        return Response(TrainingRunSerializer(run).data)

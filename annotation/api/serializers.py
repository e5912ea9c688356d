"""Shapes only: `annotation.actions` validates meaning (schema, thresholds, leases)."""

from rest_framework import serializers

from arena.api.serializers import PlayEventSerializer
from arena.models import Verdict

from ..importers import FORMATS
from ..models import MembershipRole, Project, ProjectItem, ProjectMembership


class ProjectSerializer(serializers.ModelSerializer):
    schema = serializers.JSONField(required=False)

    class Meta:
        model = Project
        fields = [
            "id", "name", "description", "guidelines", "schema", "overlap", "gold_fraction",
            "gold_warn_accuracy", "gold_block_accuracy", "gold_min_answers", "min_seconds_per_item",
            "routing_policy", "human_budget_fraction", "human_budget_count", "is_active",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness is checked by the action, with a message in Duet's error shape.
        extra_kwargs = {"name": {"validators": []}}


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text=".jsonl, .json, .csv or .parquet (optionally .gz)")
    format = serializers.ChoiceField(choices=FORMATS, default="duet")
    media_zip = serializers.FileField(required=False, help_text="zip of the files rows name in a.media / b.media")
    seed = serializers.IntegerField(required=False, default=0, help_text="sides of HH-RLHF pairs")
    background = serializers.BooleanField(
        required=False, default=False, help_text="import in the worker: answers 202 with a job to follow"
    )


class ImportSummarySerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    items_created = serializers.IntegerField()
    items_existing = serializers.IntegerField()
    check_items = serializers.IntegerField()
    judgments_created = serializers.IntegerField()
    systems_created = serializers.ListField(child=serializers.CharField())
    judges = serializers.ListField(child=serializers.CharField())
    media_files = serializers.IntegerField()


class SubmitRequestSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="the token of the task payload")
    verdict = serializers.CharField(help_text=f"one of the project's verdicts ({', '.join(Verdict.values)})")
    aspects = serializers.JSONField(required=False, default=dict)
    rationale = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    time_to_vote_ms = serializers.IntegerField(required=False, allow_null=True)
    play_events = PlayEventSerializer(many=True, required=False)


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    gold_accuracy = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = ProjectMembership
        fields = ["user", "username", "role", "quality_status", "gold_answered", "gold_correct", "gold_accuracy",
                  "flagged_at", "added_at"]  # fmt: skip
        read_only_fields = fields


class AddMemberSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=MembershipRole.choices, default=MembershipRole.ANNOTATOR)


class AdjudicateRequestSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class ItemSerializer(serializers.ModelSerializer):
    prompt = serializers.CharField(source="comparison.prompt.text", read_only=True)

    class Meta:
        model = ProjectItem
        fields = ["id", "external_id", "category", "check_kind", "gold_verdict", "route", "prompt", "created_at"]
        read_only_fields = fields

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from rest_framework import serializers

from arena.models import Judge, Judgment, Modality, Output, Prompt, System, Verdict
from arena.outputs import media
from arena.outputs.textstats import markdown_counts


class SystemSerializer(serializers.ModelSerializer):
    class Meta:
        model = System
        fields = [
            "id", "name", "modality", "provider", "provider_config", "version", "parent",
            "description", "is_active", "is_demo", "retired_at", "retired_by", "created_at",
        ]  # fmt: skip
        read_only_fields = ["is_demo", "retired_at", "retired_by", "created_at"]


class PromptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = ["id", "text", "modality", "categories", "language", "origin", "created_at"]
        read_only_fields = ["origin", "created_at"]

    def validate_categories(self, value):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise serializers.ValidationError("categories must be a list of strings")
        return value


class OutputSerializer(serializers.ModelSerializer):
    media = serializers.FileField(required=False, allow_empty_file=False, write_only=True)
    media_url = serializers.SerializerMethodField()

    class Meta:
        model = Output
        fields = [
            "id", "public_id", "system", "prompt", "text", "media", "media_url", "media_type",
            "metadata", "generation_time_s", "created_at",
        ]  # fmt: skip
        read_only_fields = ["public_id", "media_type", "metadata", "created_at"]

    def get_media_url(self, output) -> str | None:
        return output.media.url if output.media else None

    def validate(self, attrs):
        system, prompt = attrs["system"], attrs["prompt"]
        upload, text = attrs.get("media"), attrs.get("text", "")
        if system.modality != prompt.modality:
            raise serializers.ValidationError(
                {"prompt": f"prompt is {prompt.modality} but system {system.name} is {system.modality}"}
            )
        if Output.objects.filter(system=system, prompt=prompt).exists():
            raise serializers.ValidationError({"prompt": f"system {system.name} already has an output for this prompt"})
        if system.modality == Modality.TEXT:
            if upload is not None:
                raise serializers.ValidationError({"media": "text systems take text, not a media file"})
            if not text.strip():
                raise serializers.ValidationError({"text": "text is required for a text output"})
            attrs["metadata"] = markdown_counts(text)
            return attrs
        if upload is None:
            raise serializers.ValidationError({"media": f"a {system.modality} output needs a media file"})
        if upload.size > settings.MAX_UPLOAD_BYTES:  # refuse before reading it into memory
            raise serializers.ValidationError(
                {"media": f"{upload.name} is {upload.size} bytes; the limit is {settings.MAX_UPLOAD_BYTES} bytes"}
            )
        try:
            info = media.validate_media(upload.read(), filename=upload.name)
        except media.MediaError as exc:
            raise serializers.ValidationError({"media": str(exc)}) from None
        if info.kind != system.modality:
            raise serializers.ValidationError(
                {"media": f"the file is {info.kind} but system {system.name} is {system.modality}"}
            )
        upload.seek(0)
        attrs["media"] = ContentFile(upload.read(), name=f"upload.{info.extension}")
        attrs["media_type"] = info.media_type
        attrs["metadata"] = info.metadata
        return attrs

    def create(self, validated_data):
        with transaction.atomic():
            return super().create(validated_data)


class JudgmentSerializer(serializers.ModelSerializer):
    judge = serializers.StringRelatedField()
    judge_kind = serializers.CharField(source="judge.kind", read_only=True)
    comparison = serializers.UUIDField(source="comparison.public_id", read_only=True)
    system_a = serializers.CharField(source="comparison.output_a.system.name", read_only=True)
    system_b = serializers.CharField(source="comparison.output_b.system.name", read_only=True)
    supersedes = serializers.UUIDField(source="supersedes.public_id", read_only=True, allow_null=True)

    class Meta:
        model = Judgment
        fields = [
            "public_id", "comparison", "system_a", "system_b", "judge", "judge_kind", "verdict",
            "aspects", "rationale", "confidence", "time_to_vote_ms", "play_events", "supersedes",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class JudgeReviewSerializer(serializers.ModelSerializer):
    """A voter for review: who (as `flag_outliers` names them), how many judgments, and the flag."""

    voter = serializers.SerializerMethodField()
    name = serializers.CharField(source="__str__", read_only=True)
    flagged = serializers.BooleanField(source="is_flagged", read_only=True)
    n_judgments = serializers.IntegerField(read_only=True)

    class Meta:
        model = Judge
        fields = ["id", "voter", "name", "kind", "n_judgments", "flagged", "flagged_at", "flag_reason",
                  "flagged_by", "created_at"]  # fmt: skip
        read_only_fields = fields

    def get_voter(self, judge) -> str:
        return f"judge:{judge.pk}"


class PlayEventSerializer(serializers.Serializer):
    side = serializers.ChoiceField(choices=["a", "b"])
    type = serializers.ChoiceField(choices=["play", "pause", "ended", "vote"])
    position = serializers.FloatField(min_value=0)
    t = serializers.FloatField(min_value=0)


class VoteRequestSerializer(serializers.Serializer):
    """Shape only; `arena.voting.actions.check_vote` validates meaning."""

    token = serializers.CharField(required=False, allow_blank=True)
    verdict = serializers.CharField(required=False, allow_blank=True, help_text=f"one of {', '.join(Verdict.values)}")
    time_to_vote_ms = serializers.IntegerField(required=False, allow_null=True)
    play_events = PlayEventSerializer(many=True, required=False)
    category = serializers.CharField(
        required=False, allow_blank=True,
        help_text="optional: the voter's tag of the comparison's category, one of the arena's categories "
        "(the arena page lists them); it decides the battle's category board",
    )  # fmt: skip


class SideRevealSerializer(serializers.Serializer):
    system = serializers.CharField()
    provider = serializers.CharField()
    demo = serializers.BooleanField()
    version = serializers.CharField()


class RevealSerializer(serializers.Serializer):
    a = SideRevealSerializer()
    b = SideRevealSerializer()


class ComparisonSideSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["text", "image", "audio"])
    html = serializers.CharField(required=False)
    url = serializers.CharField(required=False)
    media_type = serializers.CharField(required=False)
    duration = serializers.FloatField(required=False, allow_null=True)


class ComparisonPromptSerializer(serializers.Serializer):
    text = serializers.CharField()
    html = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()


class ModalityReadinessSerializer(serializers.Serializer):
    modality = serializers.CharField()
    label = serializers.CharField()
    state = serializers.ChoiceField(["ready", "generating", "empty"])
    answers = serializers.IntegerField(help_text="answers of active systems to pool prompts")
    expected = serializers.IntegerField(help_text="active systems x pool prompts")
    comparable_prompts = serializers.IntegerField(help_text="prompts answered by two or more active systems")
    generating = serializers.BooleanField(help_text="a system that generates still lacks answers")


class ReadinessSerializer(serializers.Serializer):
    current = serializers.CharField()
    first = serializers.CharField(help_text="the modality the arena opens on")
    note = serializers.CharField(help_text="where the modalities stand, in a sentence; empty when all are ready")
    modalities = serializers.DictField(child=ModalityReadinessSerializer())


class NextComparisonSerializer(serializers.Serializer):
    comparison = serializers.UUIDField()
    token = serializers.CharField()
    modality = serializers.CharField()
    prompt = ComparisonPromptSerializer()
    a = ComparisonSideSerializer()
    b = ComparisonSideSerializer()
    audio_min_play_seconds = serializers.FloatField(required=False)


class VoteResponseSerializer(serializers.Serializer):
    judgment = serializers.UUIDField()
    verdict = serializers.CharField()
    duplicate = serializers.BooleanField()
    reveal = RevealSerializer()
    next = NextComparisonSerializer(
        required=False, allow_null=True,
        help_text="with ?next=1: the voter's next comparison in the same modality, null when there is none",
    )  # fmt: skip
    next_error = ErrorSerializer(
        required=False, help_text="with ?next=1 when `next` is null: why (what GET /api/arena/next/ would answer)"
    )


class LeaderboardRowSerializer(serializers.Serializer):
    system = serializers.CharField()
    rating = serializers.FloatField()
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    rank = serializers.IntegerField()
    votes = serializers.IntegerField()
    component = serializers.IntegerField()
    flagged_low_votes = serializers.BooleanField()
    both_bad_rate = serializers.FloatField(
        allow_null=True, required=False, help_text="share of the system's battles that ended both_bad"
    )
    retired = serializers.BooleanField(required=False, help_text="retired systems show only with include_retired")


class LeaderboardSerializer(serializers.Serializer):
    arena = serializers.CharField(allow_null=True)
    modality = serializers.CharField()
    category = serializers.CharField()
    style_control = serializers.BooleanField()
    anonymous_only = serializers.BooleanField()
    snapshot = serializers.IntegerField(allow_null=True)
    computed_at = serializers.DateTimeField(required=False)
    method = serializers.CharField(allow_null=True)
    n_battles = serializers.IntegerField()
    components = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    systems = LeaderboardRowSerializer(many=True)
    retired_systems = serializers.DictField(
        child=serializers.DateTimeField(), required=False, help_text="retired system -> when it was retired"
    )
    include_retired = serializers.BooleanField(required=False, help_text="whether retired systems' rows are listed")


class PersonalLeaderboardSerializer(serializers.Serializer):
    voter = serializers.CharField(
        allow_null=True, help_text="the username (or anonymous voter's name); null before any vote"
    )
    modality = serializers.CharField()
    n_votes = serializers.IntegerField(help_text="the voter's current votes in this modality")
    note = serializers.CharField(help_text='e.g. "Based on 12 of your votes; intervals are wide."')
    method = serializers.CharField(allow_null=True)
    components = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    systems = LeaderboardRowSerializer(many=True)
    warnings = serializers.ListField(child=serializers.CharField())


class ActivityDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    text = serializers.IntegerField()
    image = serializers.IntegerField()
    audio = serializers.IntegerField()
    total = serializers.IntegerField()


class ActivitySerializer(serializers.Serializer):
    arena = serializers.CharField(allow_null=True)
    modalities = serializers.ListField(child=serializers.CharField())
    days_window = serializers.IntegerField(allow_null=True)
    days = ActivityDaySerializer(many=True)
    totals = serializers.DictField(child=serializers.IntegerField())
    total = serializers.IntegerField()

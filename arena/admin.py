from django.contrib import admin

from .models import (
    Arena,
    Battle,
    Comparison,
    Judge,
    Judgment,
    LeaderboardSnapshot,
    LiveBattle,
    LiveGeneration,
    Output,
    Prompt,
    System,
)


@admin.register(System)
class SystemAdmin(admin.ModelAdmin):
    list_display = ["name", "modality", "provider", "version", "parent", "is_active", "created_at"]
    list_filter = ["modality", "provider", "is_active"]
    search_fields = ["name", "description"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "short_text", "modality", "origin", "language", "created_at"]
    list_filter = ["modality", "origin", "language"]
    search_fields = ["text"]

    @admin.display(description="text")
    def short_text(self, prompt):
        return prompt.text[:80]


@admin.register(Output)
class OutputAdmin(admin.ModelAdmin):
    list_display = ["id", "system", "prompt", "media_type", "generation_time_s", "created_at"]
    list_filter = ["system__modality", "system"]
    raw_id_fields = ["prompt"]
    readonly_fields = ["public_id"]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt", "output_a", "output_b", "origin", "served_to", "created_at"]
    list_filter = ["origin", "prompt__modality"]
    raw_id_fields = ["prompt", "output_a", "output_b", "served_to"]
    readonly_fields = ["public_id", "pair_key"]


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "kind", "user", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    """Judgments are append-only: existing ones are read-only here; a correction is added as
    a new judgment whose `supersedes` names the one it replaces."""

    list_display = ["public_id", "comparison", "judge", "verdict", "supersedes", "created_at"]
    list_filter = ["verdict", "judge__kind"]
    raw_id_fields = ["comparison", "judge", "supersedes"]
    readonly_fields = ["public_id", "created_at"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Arena)
class ArenaAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at", "refresh_requested_at"]


@admin.register(Battle)
class BattleAdmin(admin.ModelAdmin):
    list_display = ["id", "arena", "system_a", "system_b", "outcome", "modality", "category", "anonymous", "source", "tstamp"]
    list_filter = ["arena", "modality", "outcome", "anonymous", "source"]
    raw_id_fields = ["system_a", "system_b", "judgment"]


@admin.register(LeaderboardSnapshot)
class LeaderboardSnapshotAdmin(admin.ModelAdmin):
    list_display = ["id", "arena", "modality", "category", "style_control", "method", "ci", "n_battles", "computed_at"]
    list_filter = ["arena", "modality", "style_control"]


class LiveGenerationInline(admin.TabularInline):
    model = LiveGeneration
    extra = 0
    raw_id_fields = ["system", "output"]
    readonly_fields = ["queued_at", "started_at", "first_token_at", "finished_at"]


@admin.register(LiveBattle)
class LiveBattleAdmin(admin.ModelAdmin):
    list_display = ["public_id", "judge", "modality", "system_a", "system_b", "status", "created_at"]
    list_filter = ["modality", "status"]
    raw_id_fields = ["judge", "prompt", "system_a", "system_b", "comparison"]
    inlines = [LiveGenerationInline]

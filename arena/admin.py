from django.contrib import admin, messages

from .board import outliers
from .board.retirement import retire_system, unretire_system
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


class RetiredFilter(admin.SimpleListFilter):
    title = "retired"
    parameter_name = "retired"

    def lookups(self, request, model_admin):
        return [("1", "Retired"), ("0", "Current")]

    def queryset(self, request, queryset):
        if self.value() in ("0", "1"):
            return queryset.filter(retired_at__isnull=self.value() == "0")
        return queryset


@admin.register(System)
class SystemAdmin(admin.ModelAdmin):
    list_display = ["name", "modality", "provider", "version", "parent", "is_active", "retired_at", "created_at"]
    list_filter = ["modality", "provider", "is_active", RetiredFilter]
    search_fields = ["name", "description"]
    readonly_fields = ["retired_at", "retired_by"]
    actions = ["retire", "unretire"]

    def has_retire_permission(self, request):
        return request.user.has_perm("arena.retire_system")

    @admin.action(
        description="Retire: hide from the current board and matchmaking (history kept)", permissions=["retire"]
    )
    def retire(self, request, queryset):
        changed = sum(retire_system(system, by=request.user.get_username()) for system in queryset)
        self.message_user(request, f"{changed} system(s) retired.", messages.SUCCESS)

    @admin.action(description="Bring back from retirement", permissions=["retire"])
    def unretire(self, request, queryset):
        changed = sum(unretire_system(system) for system in queryset)
        self.message_user(request, f"{changed} system(s) brought back.", messages.SUCCESS)


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


class FlaggedFilter(admin.SimpleListFilter):
    title = "flagged for review"
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return [("1", "Flagged"), ("0", "Not flagged")]

    def queryset(self, request, queryset):
        if self.value() in ("0", "1"):
            return queryset.filter(flagged_at__isnull=self.value() == "0")
        return queryset


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    """Voters flagged by `flag_outliers --mark` are reviewed here: filter on "flagged for
    review", read the reason, and clear the flag of an honest voter (their votes count on
    the boards again) or flag one by hand. Flags change only through the actions, which
    queue a leaderboard refresh."""

    list_display = ["name", "version", "kind", "user", "flagged", "flagged_at", "flagged_by", "created_at"]
    list_filter = [FlaggedFilter, "kind"]
    search_fields = ["name", "user__username"]
    readonly_fields = ["flagged_at", "flag_reason", "flagged_by", "created_at"]
    actions = ["clear_flag", "mark_flagged"]

    @admin.display(boolean=True, ordering="flagged_at", description="flagged")
    def flagged(self, judge):
        return judge.is_flagged

    def has_review_permission(self, request):
        return request.user.has_perm("arena.review_judge")

    @admin.action(description="Clear the flag (the voter's judgments count again)", permissions=["review"])
    def clear_flag(self, request, queryset):
        cleared = outliers.clear_flags(queryset)
        self.message_user(request, f"Cleared the flag of {cleared} voter(s).", messages.SUCCESS)

    @admin.action(description="Flag for review (leave the voter's judgments out)", permissions=["review"])
    def mark_flagged(self, request, queryset):
        by = request.user.get_username()
        flagged = outliers.flag_judges(queryset, reason=f"flagged by hand by {by}", by=by)
        self.message_user(request, f"Flagged {flagged} voter(s) for review.", messages.SUCCESS)


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


from . import webhooks_admin  # noqa: E402,F401  (Webhook, WebhookDelivery)

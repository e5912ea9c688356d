from django.contrib import admin

from .models import JudgingJob, ProjectRouting, RoutingDecision, UnusableVerdict


@admin.register(ProjectRouting)
class ProjectRoutingAdmin(admin.ModelAdmin):
    list_display = ["project", "judge_spec", "auto_route", "seed", "batch_size", "judge", "updated_at"]
    raw_id_fields = ["project", "judge"]


@admin.register(JudgingJob)
class JudgingJobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "judge_spec", "status", "done", "total", "trigger", "created_at"]
    list_filter = ["kind", "status", "trigger"]
    raw_id_fields = ["project", "judge", "requested_by"]
    readonly_fields = ["counts", "error", "started_at", "heartbeat_at", "finished_at"]


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "item", "route", "policy", "judge_verdict", "score", "created_at"]
    list_filter = ["route", "policy"]
    raw_id_fields = ["project", "item", "job", "judge", "judgment"]
    readonly_fields = ["reason", "budget", "features"]


@admin.register(UnusableVerdict)
class UnusableVerdictAdmin(admin.ModelAdmin):
    list_display = ["id", "judge", "comparison", "verdict", "detail", "created_at"]
    raw_id_fields = ["judge", "comparison"]

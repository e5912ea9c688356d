from django.contrib import admin

from .export import views as export_views
from .models import Adjudication, Assignment, Project, ProjectItem, ProjectMembership


class MembershipInline(admin.TabularInline):
    model = ProjectMembership
    extra = 0
    raw_id_fields = ["user"]
    readonly_fields = ["gold_answered", "gold_correct", "flagged_at"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "overlap", "routing_policy", "is_active", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]
    actions = [export_views.export_admin_action]


@admin.register(ProjectItem)
class ProjectItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "project", "category", "check_kind", "gold_verdict", "route"]
    list_filter = ["project", "route", "check_kind"]
    search_fields = ["external_id"]
    raw_id_fields = ["comparison"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    # Leases are written by the queue only; the admin shows them.
    list_display = ["item", "annotator", "status", "leased_at", "expires_at", "completed_at", "gold_correct"]
    list_filter = ["project", "status"]
    readonly_fields = [f.name for f in Assignment._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    list_display = ["item", "reviewer", "verdict", "created_at"]
    readonly_fields = ["item", "reviewer", "verdict", "note", "created_at"]

    def has_add_permission(self, request):
        return False

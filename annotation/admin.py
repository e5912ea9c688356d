from urllib.parse import urlencode

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse

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
    actions = ["export_judgments"]

    # Here, not in export/views.py: every management command loads the admin modules, and
    # the export views pull in DRF and drf-spectacular (about 0.5 s of each start).
    @admin.action(description="Export judgments of the selected project")
    def export_judgments(self, request, queryset):
        """Opens the export page with the (first) selected project."""
        project = queryset.order_by("name").first()
        return redirect(f"{reverse('annotation:export')}?{urlencode({'target': f'project:{project.name}'})}")


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

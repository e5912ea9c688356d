from django.contrib import admin

from .models import TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "loss", "base_model", "n_pairs", "produced_system", "created_at"]
    list_filter = ["kind", "status", "loss"]
    raw_id_fields = ["project", "arena", "base_system", "produced_system", "created_by"]
    readonly_fields = ["progress", "history", "metrics", "artifacts", "heartbeat_at", "started_at", "finished_at"]

"""Mounted by config/urls.py as `path("api/", include("annotation.api.urls"))`."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from annotation.export import views as export_views

from . import views

app_name = "annotation_api"

# SimpleRouter: the arena's DefaultRouter already serves the API root at /api/.
router = SimpleRouter()
router.register("projects", views.ProjectViewSet, basename="project")
router.register("annotation/imports", views.ImportJobViewSet, basename="import-job")

urlpatterns = router.urls + [
    path("annotation/exports/", export_views.ExportJobsView.as_view(), name="export-jobs"),
    path("annotation/exports/<str:job_id>/", export_views.ExportJobView.as_view(), name="export-job"),
    path("annotation/exports/<str:job_id>/download/", export_views.ExportDownloadView.as_view(), name="export-download"),
    path("annotation/exports/<str:job_id>/cancel/", export_views.CancelExportView.as_view(), name="export-cancel"),
    path("annotation/exports/<str:job_id>/retry/", export_views.RetryExportView.as_view(), name="export-retry"),
]

"""Mounted by config/urls.py as `path("api/", include("routing.api.urls"))`."""

from django.urls import path

from . import views

app_name = "routing_api"
urlpatterns = [
    path("routing/projects/", views.ProjectsView.as_view(), name="projects"),
    path("routing/projects/<int:pk>/", views.ProjectSummaryView.as_view(), name="project"),
    path("routing/projects/<int:pk>/decisions/", views.DecisionsView.as_view(), name="decisions"),
    path("routing/projects/<int:pk>/judge-boards/", views.JudgeBoardsView.as_view(), name="judge-boards"),
    path("routing/projects/<int:pk>/jobs/", views.ProjectJobsView.as_view(), name="project-jobs"),
    path("routing/projects/<int:pk>/judge/", views.StartJudgingView.as_view(), name="judge"),
    path("routing/projects/<int:pk>/route/", views.StartRoutingView.as_view(), name="route"),
    path("routing/jobs/<int:job_id>/", views.JobView.as_view(), name="job"),
    path("routing/jobs/<int:job_id>/cancel/", views.CancelJobView.as_view(), name="job-cancel"),
    path("routing/jobs/<int:job_id>/retry/", views.RetryJobView.as_view(), name="job-retry"),
]

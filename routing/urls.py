from django.urls import path

from . import views

app_name = "routing"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("projects/<int:pk>/", views.project_page, name="project"),
    path("projects/<int:pk>/settings/", views.save_settings, name="settings"),
    path("projects/<int:pk>/jobs/<str:kind>/", views.start_job, name="start"),
    path("jobs/<int:job_id>/cancel/", views.cancel_job, name="cancel"),
    path("jobs/<int:job_id>/retry/", views.retry_job, name="retry"),
]

from django.urls import path

from . import views

app_name = "training"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("runs/", views.start_run, name="start"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("runs/<int:run_id>/status/", views.run_status, name="status"),
    path("runs/<int:run_id>/cancel/", views.cancel_run, name="cancel"),
    path("runs/<int:run_id>/retry/", views.retry_run, name="retry"),
]

from django.urls import path

from . import dashboard, views
from .export import views as export_views

app_name = "annotation"
urlpatterns = [
    path("", views.project_list, name="list"),
    path("new/", views.project_create, name="create"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("export/", export_views.export_page, name="export"),
    path("<int:pk>/", views.project_detail, name="detail"),
    path("<int:pk>/edit/", views.project_edit, name="edit"),
    path("<int:pk>/import/", views.project_import, name="import"),
    path("<int:pk>/imports/<int:job_id>/cancel/", views.import_job_cancel, name="import-cancel"),
    path("<int:pk>/imports/<int:job_id>/retry/", views.import_job_retry, name="import-retry"),
    path("<int:pk>/members/", views.project_members, name="members"),
    path("<int:pk>/join/", views.project_join, name="join"),
    path("<int:pk>/work/", views.work, name="work"),
    path("<int:pk>/review/", views.review, name="review"),
    path("<int:pk>/items/<int:item_pk>/", views.item_detail, name="item"),
]

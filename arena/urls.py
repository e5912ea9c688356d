from django.urls import path

from . import views

app_name = "arena"
urlpatterns = [path("", views.arena_page, name="arena")]

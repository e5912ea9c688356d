from django.urls import path, re_path

from . import leaderboard_views, views

app_name = "arena"
urlpatterns = [
    path("", views.arena_page, name="arena"),
    path("leaderboard/", leaderboard_views.leaderboard_page, name="leaderboard"),
    re_path(r"^leaderboard/download/(?P<fmt>json|csv)/$", leaderboard_views.leaderboard_download, name="leaderboard-download"),
    path("leaderboard/refresh/", leaderboard_views.leaderboard_refresh, name="leaderboard-refresh"),
]

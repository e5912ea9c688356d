from django.urls import path, re_path

from .board import views as board_views
from .voting import views as voting_views

app_name = "arena"
urlpatterns = [
    path("", voting_views.arena_page, name="arena"),
    path("leaderboard/", board_views.leaderboard_page, name="leaderboard"),
    re_path(r"^leaderboard/download/(?P<fmt>json|csv)/$", board_views.leaderboard_download, name="leaderboard-download"),
    path("leaderboard/mine/", board_views.personal_page, name="leaderboard-mine"),
    path("leaderboard/activity/", board_views.activity_page, name="leaderboard-activity"),
    path("leaderboard/refresh/", board_views.leaderboard_refresh, name="leaderboard-refresh"),
]

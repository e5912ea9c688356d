from django.urls import path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("systems", views.SystemViewSet)
router.register("prompts", views.PromptViewSet)
router.register("outputs", views.OutputViewSet)
router.register("judgments", views.JudgmentViewSet)

urlpatterns = [
    path("arena/next/", views.NextComparisonView.as_view(), name="arena-next"),
    path("arena/vote/", views.VoteView.as_view(), name="arena-vote"),
    path("leaderboard/", views.LeaderboardView.as_view(), name="leaderboard-api"),
    *router.urls,
]

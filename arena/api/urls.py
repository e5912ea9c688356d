from django.urls import path
from rest_framework.routers import DefaultRouter

from . import live_views, review_views, views, webhook_views

router = DefaultRouter()
router.register("systems", views.SystemViewSet)
router.register("prompts", views.PromptViewSet)
router.register("outputs", views.OutputViewSet)
router.register("judgments", views.JudgmentViewSet)
router.register("arena/judges", review_views.JudgeReviewViewSet, basename="judge")
router.register("webhooks", webhook_views.WebhookViewSet)
router.register("webhook-deliveries", webhook_views.WebhookDeliveryViewSet)

urlpatterns = [
    path("arena/next/", views.NextComparisonView.as_view(), name="arena-next"),
    path("arena/vote/", views.VoteView.as_view(), name="arena-vote"),
    path("arena/readiness/", views.ReadinessView.as_view(), name="arena-readiness"),
    path("leaderboard/", views.LeaderboardView.as_view(), name="leaderboard-api"),
    path("leaderboard/similar/", views.SimilarLeaderboardView.as_view(), name="leaderboard-similar-api"),
    path("leaderboard/mine/", views.PersonalLeaderboardView.as_view(), name="leaderboard-mine-api"),
    path("leaderboard/activity/", views.ActivityView.as_view(), name="leaderboard-activity-api"),
    path("live/battles/", live_views.LiveBattlesView.as_view(), name="live-battles"),
    path("live/battles/<uuid:battle_id>/", live_views.LiveBattleView.as_view(), name="live-battle"),
    path("live/battles/<uuid:battle_id>/messages/", live_views.LiveMessageView.as_view(), name="live-messages"),
    path("live/battles/<uuid:battle_id>/vote/", live_views.LiveVoteView.as_view(), name="live-vote"),
    path("live/battles/<uuid:battle_id>/events/", live_views.live_events, name="live-events"),
    *router.urls,
]

from rest_framework.routers import DefaultRouter

from .views import TrainingRunViewSet

router = DefaultRouter()
router.register("training/runs", TrainingRunViewSet, basename="trainingrun")
urlpatterns = router.urls

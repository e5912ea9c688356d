"""Mounted by config/urls.py as `path("api/", include("annotation.api.urls"))`."""

from rest_framework.routers import SimpleRouter

from . import views

app_name = "annotation_api"

# SimpleRouter: the arena's DefaultRouter already serves the API root at /api/.
router = SimpleRouter()
router.register("projects", views.ProjectViewSet, basename="project")

urlpatterns = router.urls

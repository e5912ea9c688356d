"""The project's URLs plus the annotation API at /api/, as config/urls.py will have it
once the lead adds the include (see the annotation section of the README)."""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, path("api/", include("annotation.api.urls"))]

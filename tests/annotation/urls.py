"""The project's URLs with the annotation API at /api/, as config/urls.py has it once the
include line from the README is added (until then these tests add it themselves)."""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns


def _includes_annotation_api(patterns) -> bool:
    return any(getattr(getattr(p, "urlconf_module", None), "__name__", "") == "annotation.api.urls" for p in patterns)


urlpatterns = list(project_urlpatterns)
if not _includes_annotation_api(urlpatterns):
    urlpatterns.append(path("api/", include("annotation.api.urls")))

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from arena.health import ping

urlpatterns = [
    # The arena's API first: the vote loop's two endpoints are most of the traffic, and
    # URL resolution tries patterns in order.
    path("api/ping/", ping, name="ping"),
    path("api/", include("arena.api.urls")),
    path("", include("arena.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("training.api.urls")),
    path("api/", include("annotation.api.urls")),
    path("api/", include("routing.api.urls")),
    path("projects/", include("annotation.urls")),
    path("routing/", include("routing.urls")),
    path("training/", include("training.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
]

if settings.SERVE_MEDIA:
    # Media names are random (see arena.models.output_media_path), so serving the folder
    # reveals nothing a voter could use to tell systems apart.
    urlpatterns += [
        re_path(r"^%s(?P<path>.*)$" % settings.MEDIA_URL.lstrip("/"), serve, {"document_root": settings.MEDIA_ROOT}),
    ]

# 403 and 404 in the site's layout with a reason and what to do (config/error_pages.py).
handler403 = "config.error_pages.permission_denied"
handler404 = "config.error_pages.page_not_found"

"""The 403 and 404 pages: in the site's layout, with a sentence saying why and what to do.

A view says why by raising PermissionDenied (or Http404) with a message written for the
person reading the page. It may add `advice` (what to do next) and `offer`, a
(url, label) pair shown as a button that POSTs there (say, joining the project that
refused them). Under /api/ the answer is JSON in the API's error shape instead.
"""

from django.conf import settings
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404

API_PREFIX = "/api/"
NO_REASON_403 = "You do not have permission to open this page."
ADVICE_403 = "If you think you should, ask a researcher or an admin for access."


def _message(exception) -> str:
    # PermissionDenied() and Http404() carry no message; a Resolver404's is a dict of the
    # patterns tried, which is for the debug page, never for a visitor.
    if exception is None or isinstance(exception, Resolver404) or not exception.args:
        return ""
    first = exception.args[0]
    return first if isinstance(first, str) else ""


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def permission_denied(request, exception=None):
    reason = _sentence(_message(exception)) or NO_REASON_403
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"error": "permission_denied", "detail": reason}, status=403)
    context = {
        "reason": reason,
        "advice": getattr(exception, "advice", "") or ADVICE_403,
        "offer": getattr(exception, "offer", None),
        "login_needed": not request.user.is_authenticated,
    }
    return render(request, "403.html", context, status=403)


def page_not_found(request, exception=None):
    reason = _sentence(_message(exception)) or f"There is no page at {request.path}."
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"error": "not_found", "detail": reason}, status=404)
    return render(request, "404.html", {"reason": reason, "path": request.path}, status=404)


class SitePageNotFoundMiddleware:
    """With DEBUG on (`make run`), Django answers a 404 with its technical page, bypassing
    handler404. A visitor of a local install should meet the site's page all the same, so
    the technical page is swapped for it; the technical details stay in the runserver log.
    Without DEBUG this middleware does nothing (handler404 already answers)."""

    TECHNICAL_MARK = b"DEBUG = True"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and response.get("Content-Type", "").startswith("text/html")
            and not getattr(response, "streaming", False)
            and self.TECHNICAL_MARK in response.content
        ):
            return page_not_found(request, getattr(request, "_duet_not_found", None))
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, Http404):
            request._duet_not_found = exception  # its message, for the page
        return None

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from arena.errors import DuetError


def exception_handler(exc, context):
    """Domain errors become {"error": code, "detail": message} with their status (and
    ``Retry-After`` when a rate limit refused them); DRF's own errors keep DRF's shape."""
    if isinstance(exc, DuetError):
        response = Response({"error": exc.code, "detail": exc.message}, status=exc.status_code)
        retry_after = getattr(exc, "retry_after", None)  # a spent rate limit (arena.ratelimit)
        if retry_after is not None:
            response["Retry-After"] = str(retry_after)
        return response
    return drf_exception_handler(exc, context)

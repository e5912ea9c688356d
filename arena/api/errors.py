from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from arena.errors import DuetError


def exception_handler(exc, context):
    """Domain errors become {"error": code, "detail": message} with their status; DRF's own
    errors keep DRF's shape."""
    if isinstance(exc, DuetError):
        return Response({"error": exc.code, "detail": exc.message}, status=exc.status_code)
    return drf_exception_handler(exc, context)

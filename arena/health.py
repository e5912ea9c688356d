"""`/api/ping/`: the cheapest request through Django (its middleware, no database), so a
load test can measure the machine's ceiling beside the vote loop (bench/load.py)."""

from django.http import JsonResponse
from django.views.decorators.http import require_safe


@require_safe
def ping(request):
    return JsonResponse({"ok": True})

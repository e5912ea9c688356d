from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from .models import Modality


def arena_page(request):
    """The arena shell; the comparison itself is fetched by static/arena/arena.js."""
    if not request.user.is_authenticated and not settings.OPEN_ARENA:
        return redirect_to_login(request.get_full_path())
    modality = request.GET.get("modality", Modality.TEXT)
    if modality not in Modality.values:
        modality = Modality.TEXT
    can_vote = request.user.has_perm("arena.add_judgment") if request.user.is_authenticated else True
    mode = "live" if request.GET.get("mode") == "live" else "pool"
    return render(
        request,
        "arena/live.html" if mode == "live" else "arena/arena.html",
        {
            "mode": mode,
            "modality": modality,
            "modalities": Modality.choices,
            "can_vote": can_vote,
            "audio_min_play_seconds": settings.AUDIO_MIN_PLAY_SECONDS,
        },
    )

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from arena.models import Modality
from arena.voting.categories import category_choices
from arena.voting.readiness import arena_readiness, first_ready, readiness_json


def arena_page(request):
    """The arena shell; the comparison itself is fetched by static/arena/arena.js.

    Without a ?modality= the pool opens on a modality that has a comparison to serve (text
    first), so a fresh demo shows image and audio pairs while text answers are generated.
    """
    if not request.user.is_authenticated and not settings.OPEN_ARENA:
        return redirect_to_login(request.get_full_path())
    mode = "live" if request.GET.get("mode") == "live" else "pool"
    can_vote = request.user.has_perm("arena.add_judgment") if request.user.is_authenticated else True
    context = {
        "mode": mode,
        "modalities": Modality.choices,
        "can_vote": can_vote,
        "audio_min_play_seconds": settings.AUDIO_MIN_PLAY_SECONDS,
    }
    modality = request.GET.get("modality")
    if mode == "live":
        context["modality"] = modality if modality in Modality.values else Modality.TEXT
        return render(request, "arena/live.html", context)
    readiness = arena_readiness()
    if modality not in Modality.values:
        modality = first_ready(readiness)
    context.update(
        modality=modality, readiness=readiness_json(readiness, modality), categories=category_choices(modality)
    )
    return render(request, "arena/arena.html", context)

"""The researchers' dashboard: start runs, watch them, compare them."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from arena.errors import DuetError
from arena.models import Arena, Modality, Provider, System

from . import actions
from .models import RunStatus, TrainingRun


def _curve(history: list[dict], key: str, width: int = 560, height: int = 160) -> dict | None:
    """An SVG polyline of one metric over steps, computed here so no plotting library ships."""
    points = [(h["step"], h[key]) for h in history if h.get(key) is not None]
    if len(points) < 2:
        return None
    steps, values = zip(*points)
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    first, last = min(steps), max(steps)

    def xy(step, value):
        x = 40 + (step - first) / ((last - first) or 1) * (width - 50)
        y = 10 + (1 - (value - low) / span) * (height - 30)
        return f"{x:.1f},{y:.1f}"

    return {"points": " ".join(xy(s, v) for s, v in points), "low": round(low, 4), "high": round(high, 4),
            "first": first, "last": last, "width": width, "height": height}  # fmt: skip


def _form_context():
    from annotation.models import Project

    return {
        "projects": Project.objects.order_by("name"),
        "arenas": Arena.objects.order_by("name"),
        "bases": System.objects.filter(provider=Provider.TRANSFORMERS, modality=Modality.TEXT).order_by("name"),
        "losses": actions.LOSSES,
    }


@login_required
@permission_required("training.view_trainingrun", raise_exception=True)
def dashboard(request):
    actions.mark_stale_runs()
    runs = TrainingRun.objects.select_related("project", "arena", "base_system", "produced_system")[:50]
    return render(request, "training/dashboard.html", {"runs": runs, **_form_context(),
                                                      "any_active": any(not r.is_finished for r in runs)})  # fmt: skip


@login_required
@require_POST
@permission_required("training.add_trainingrun", raise_exception=True)
def start_run(request):
    post = request.POST
    source = post.get("source", "")
    kind_of_source, _, name = source.partition(":")
    try:
        max_steps = int(post["max_steps"]) if post.get("max_steps") else None
        min_confidence = float(post.get("min_confidence") or 0)
    except ValueError:
        messages.error(request, "max steps and minimum confidence must be numbers")
        return redirect("training:dashboard")
    try:
        run_request = actions.check_run_request(
            kind=post.get("kind", ""), project=name if kind_of_source == "project" else None,
            arena=name if kind_of_source == "arena" else None, base=post.get("base") or None,
            loss=post.get("loss", "sigmoid"), max_steps=max_steps, adapter=post.get("adapter", "auto"),
            filters={"aggregate": post.get("aggregate", "dawid-skene"), "min_confidence": min_confidence,
                     "include_ties": post.get("include_ties") == "on", "source": post.get("data_source", "human")},
        )  # fmt: skip
    except DuetError as exc:
        messages.error(request, exc.message)
        return redirect("training:dashboard")
    run = actions.do_create_run(run_request, request.user)
    messages.success(request, f"Run {run.pk} queued on the training queue.")
    return redirect("training:run", run_id=run.pk)


@login_required
@permission_required("training.view_trainingrun", raise_exception=True)
def run_detail(request, run_id: int):
    actions.mark_stale_runs()
    run = get_object_or_404(TrainingRun.objects.select_related("project", "arena", "base_system", "produced_system"),
                            pk=run_id)  # fmt: skip
    return render(request, "training/run.html", {
        "run": run,
        "loss_curve": _curve(run.history, "loss"),
        "accuracy_curve": _curve(run.history, "reward_accuracy"),
        "metric_rows": sorted((k, v) for k, v in run.metrics.items() if isinstance(v, (int, float, str)) and v is not None),
        "active": run.status in (RunStatus.QUEUED, RunStatus.RUNNING),
    })  # fmt: skip


@login_required
@require_POST
@permission_required("training.change_trainingrun", raise_exception=True)
def cancel_run(request, run_id: int):
    run = get_object_or_404(TrainingRun, pk=run_id)
    try:
        actions.do_cancel_run(run)
        messages.success(request, f"Run {run.pk}: cancellation requested.")
    except DuetError as exc:
        messages.error(request, exc.message)
    return redirect("training:run", run_id=run.pk)

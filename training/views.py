"""The researchers' dashboard: start runs, watch them, compare them."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from arena.errors import DuetError
from arena.jobs import workers

from . import actions, results, selection
from .forms import StartRunForm
from .models import RunStatus, TrainingRun

TRAINING_QUEUE = "training"


def _worker_warning(runs) -> str:
    """Said where a run waits on the queue and nothing consumes it."""
    if not any(run.status == RunStatus.QUEUED for run in runs):
        return ""
    if workers.queue_has_worker(TRAINING_QUEUE) is False:
        return (f"No worker is consuming the `{TRAINING_QUEUE}` queue, so queued runs wait: start one with "
                "`make worker`, or run a job on this machine with `manage.py train ... --here`.")  # fmt: skip
    return ""


def _render_dashboard(request, form, status=200):
    runs = list(TrainingRun.objects.select_related("project", "arena", "base_system", "produced_system")[:50])
    for run in runs:
        run.heldout = results.heldout(run.metrics)
        run.phase_text = results.progress_line(run.status, run.progress)
    context = {"runs": runs, "form": form, "min_pairs": selection.MIN_PAIRS, "worker_warning": _worker_warning(runs),
               "any_active": any(not run.is_finished for run in runs)}  # fmt: skip
    return render(request, "training/dashboard.html", context, status=status)


@login_required
@permission_required("training.view_trainingrun", raise_exception=True)
def dashboard(request):
    return _render_dashboard(request, StartRunForm())


@login_required
@require_POST
@permission_required("training.add_trainingrun", raise_exception=True)
def start_run(request):
    form = StartRunForm(request.POST)
    if not form.is_valid():
        return _render_dashboard(request, form, status=400)
    try:
        run_request = actions.check_run_request(**form.request_arguments())
        count = selection.check_enough_pairs(run_request)
    except DuetError as exc:
        form.add_error(None, exc.message)
        return _render_dashboard(request, form, status=400)
    run = actions.do_create_run(run_request, request.user)
    messages.success(request, f"Run {run.pk} queued on the {TRAINING_QUEUE} queue with {count.describe()}.")
    return redirect("training:run", run_id=run.pk)


def _run_or_404(run_id: int) -> TrainingRun:
    return get_object_or_404(TrainingRun.objects.select_related("project", "arena", "base_system", "produced_system"),
                             pk=run_id)  # fmt: skip


def _status(run: TrainingRun) -> dict:
    """What the run page shows live; `static/training/training.js` polls it."""
    return {
        "id": run.pk,
        "status": run.status,
        "finished": run.is_finished,
        "stopping": run.cancel_requested and run.status == RunStatus.RUNNING,
        "percent": results.percent(run.status, run.progress),
        "phase": run.progress.get("phase") or "",
        "phase_label": results.phase_label(run.progress),
        "progress_text": results.progress_line(run.status, run.progress),
        "progress": run.progress,
        "n_pairs": run.n_pairs,
        "loss_curve": results.curve(run.history, "loss"),
        "error": results.error_summary(run.error),
        "worker_warning": _worker_warning([run]),
    }


@login_required
@permission_required("training.view_trainingrun", raise_exception=True)
def run_detail(request, run_id: int):
    run = _run_or_404(run_id)
    status = _status(run)
    return render(request, "training/run.html", {
        "run": run,
        "state": status,
        "status_url": reverse("training:status", args=[run.pk]),
        "accuracy_curve": results.curve(run.history, "reward_accuracy"),
        "evaluations": results.evaluations(run.metrics),
        "metric_rows": results.other_metrics(run.metrics),
        "min_evaluation_pairs": results.MIN_EVALUATION_PAIRS,
        "error_has_details": "\n" in run.error.strip(),
        "active": not run.is_finished,
    })  # fmt: skip


@login_required
@permission_required("training.view_trainingrun", raise_exception=True)
def run_status(request, run_id: int):
    # Polled every 2 s by each open run page: it only reads (the beat's sweep fails stale runs).
    return JsonResponse(_status(_run_or_404(run_id)))


# Cancel and retry need what starting a run needs.
@login_required
@require_POST
@permission_required("training.add_trainingrun", raise_exception=True)
def cancel_run(request, run_id: int):
    run = get_object_or_404(TrainingRun, pk=run_id)
    try:
        actions.do_cancel_run(run)
        messages.success(request, f"Run {run.pk}: cancellation requested.")
    except DuetError as exc:
        messages.error(request, exc.message)
    return redirect("training:run", run_id=run.pk)


@login_required
@require_POST
@permission_required("training.add_trainingrun", raise_exception=True)
def retry_run(request, run_id: int):
    run = get_object_or_404(TrainingRun, pk=run_id)
    try:
        run = actions.do_retry_run(run)
        messages.success(request, f"Run {run.pk} queued again (attempt {run.attempts}) on the {TRAINING_QUEUE} queue.")
    except DuetError as exc:
        messages.error(request, exc.message)
    return redirect("training:run", run_id=run.pk)

"""The routing pages: every project's policy and routes at /routing/, and per project the
settings, the jobs, the judge's figures and the audit of every decision. Views authorise,
call an action or a query, and render; a running job is followed through the API
(static/routing/routing.js), which updates the page in place when it ends."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from annotation import actions as annotation_actions
from annotation.models import Project
from arena.errors import DuetError

from . import actions, report
from .boards import judge_boards
from .forms import RoutingSettingsForm
from .models import DecisionRoute, JobKind, JudgingJob, RoutingDecision

DECISIONS_PER_PAGE = 50
VIEW_PERMISSION = "routing.view_routingdecision"
JOB_PERMISSION = "routing.add_judgingjob"
SETTINGS_PERMISSIONS = ("routing.change_projectrouting", "annotation.change_project")


def _require(request, *permissions: str) -> None:
    if not all(request.user.has_perm(permission) for permission in permissions):
        raise PermissionDenied("Routing is for researchers and admins: it shows and changes who labels each item.")


def _api_url(name: str, pk: int | None) -> str:
    if pk is None:
        return ""
    try:
        return reverse(f"routing_api:{name}", args=[pk])
    except NoReverseMatch:  # the API is not mounted: the bar does not move, the page still works
        return ""


@login_required
def overview(request):
    _require(request, VIEW_PERMISSION)
    projects = list(Project.objects.order_by("name"))
    return render(request, "routing/overview.html", {"rows": report.overview_rows(projects)})


@login_required
def project_page(request, pk):
    _require(request, VIEW_PERMISSION)
    project = get_object_or_404(Project, pk=pk)
    routing = actions.routing_settings(project)
    judges = report.project_judges(project)
    chosen = None
    if request.GET.get("judge"):
        chosen = next((judge for judge in judges if str(judge.pk) == request.GET["judge"]), None)
    figures = report.project_report(project, judge=chosen)
    decisions = RoutingDecision.objects.filter(project=project).select_related("item", "judge")
    route_filter = request.GET.get("route", "")
    if route_filter in DecisionRoute.values:
        decisions = decisions.filter(route=route_filter)
    page = Paginator(decisions, DECISIONS_PER_PAGE).get_page(request.GET.get("page"))
    job = actions.active_job(project) or JudgingJob.objects.filter(project=project).order_by("-id").first()
    form = RoutingSettingsForm(project=project, routing=routing)
    return render(request, "routing/project.html", {
        "project": project, "routing": routing, "figures": figures, "page": page, "route_filter": route_filter,
        "routes": DecisionRoute.choices, "judges": judges, "chosen_judge": chosen or routing.judge,
        "job": job, "job_url": _api_url("job", job.pk if job else None),
        "summary_url": _api_url("project", project.pk), "form": form,
        "can_run": request.user.has_perm(JOB_PERMISSION),
        "can_configure": all(request.user.has_perm(p) for p in SETTINGS_PERMISSIONS),
        "recent_jobs": JudgingJob.objects.filter(project=project).select_related("judge").order_by("-id")[:10],
        "judge_boards": [entry.to_dict() for entry in judge_boards(project)],
        **actions.calibration_context(project, chosen or routing.judge),
    })  # fmt: skip


@login_required
@require_POST
def save_settings(request, pk):
    _require(request, VIEW_PERMISSION, *SETTINGS_PERMISSIONS)
    project = get_object_or_404(Project, pk=pk)
    form = RoutingSettingsForm(request.POST, project=project, routing=actions.routing_settings(project))
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(texts)}" if name != "__all__" else " ".join(texts)
                           for name, texts in form.errors.items())  # fmt: skip
        messages.error(request, f"Nothing was saved. {errors}")
        return redirect("routing:project", pk=pk)
    try:
        with transaction.atomic():
            annotation_actions.update_project(project, **form.project_fields())
            actions.update_routing_settings(project, **form.routing_fields())
    except DuetError as error:
        messages.error(request, f"Nothing was saved. {error.message}")
    else:
        messages.success(request, "Routing settings saved. They apply to items routed from now on.")
    return redirect("routing:project", pk=pk)


@login_required
@require_POST
def start_job(request, pk, kind):
    _require(request, VIEW_PERMISSION, JOB_PERMISSION)
    project = get_object_or_404(Project, pk=pk)
    try:
        limit = int(request.POST["limit"]) if request.POST.get("limit") else None
        job = actions.queue_job(project, kind, limit=limit if kind == JobKind.JUDGE else None, trigger="page",
                                user=request.user)  # fmt: skip
    except ValueError:
        messages.error(request, "limit must be a whole number")
    except DuetError as error:
        messages.error(request, error.message)
    else:
        what = "Routing of the pending items" if kind == JobKind.ROUTE else f"Judging with {job.judge_spec}"
        messages.success(request, f"{what} is queued on the judging queue (job {job.pk}).")
    return redirect("routing:project", pk=pk)



def _job_action(request, job_id, act, done: str):
    """Cancel or retry a job from the project page: what starting a job needs."""
    _require(request, VIEW_PERMISSION, JOB_PERMISSION)
    job = get_object_or_404(JudgingJob, pk=job_id)
    try:
        job = act(job)
    except DuetError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done.format(job=job))
    return redirect("routing:project", pk=job.project_id)


@login_required
@require_POST
def cancel_job(request, job_id):
    return _job_action(request, job_id, actions.cancel_job, "Job {job.pk}: cancellation requested.")


@login_required
@require_POST
def retry_job(request, job_id):
    return _job_action(request, job_id, actions.retry_job,
                       "Job {job.pk} is queued again on the judging queue (attempt {job.attempts}).")

"""Project pages. Each view authorises, calls an action or a query, and renders; the
annotator's task itself is driven by static/annotation/annotation.js over the API."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from arena.errors import DuetError
from arena.jobs import lifecycle
from arena.models import HUMAN_JUDGE_KINDS, Judgment, Verdict
from arena.outputs.rendering import render_markdown

from . import actions, import_jobs
from . import assignment as queue
from .errors import PageRefused
from .forms import AdjudicateForm, ImportForm, MemberForm, ProjectForm
from .models import Assignment, AssignmentStatus, ImportJob, MembershipRole, Project, ProjectItem, ProjectMembership
from .schema import parse_schema

ITEMS_SHOWN = 100
# The arena's keys: a verdict keeps its key whichever subset a project offers.
VERDICT_KEYS = {"a": "1", "b": "2", "tie": "3", "both_bad": "4"}
VERDICT_LABELS = dict(Verdict.choices)


def _manager_only(request):
    if not actions.can_manage(request.user):
        raise PageRefused(
            "Only researchers and admins create and manage projects.",
            "Your projects are on the Projects page; ask an admin for the researcher role if you need more.",
        )


def _not_a_member(request, project: Project, doing: str) -> PageRefused:
    """Why a non-member is refused, and the way in: joining, for those who may join."""
    if actions.can_join(project, request.user):
        return PageRefused(
            f"You are not a member of project {project.name!r}, so you cannot {doing} yet.",
            "You run this project: join it to annotate its items.",
            offer=(reverse("annotation:join", args=[project.pk]), "Join and annotate"),
        )
    return PageRefused(
        f"You are not a member of this project, so you cannot {doing}.",
        "Ask the researcher who runs it to add you; the projects you belong to are on the Projects page.",
    )


def _visible_project(request, pk) -> Project:
    project = get_object_or_404(Project, pk=pk)
    if not (actions.can_manage(request.user) or project.memberships.filter(user=request.user).exists()):
        raise _not_a_member(request, project, "see it")
    return project


@login_required
def project_list(request):
    manager = actions.can_manage(request.user)
    projects = Project.objects.all() if manager else Project.objects.filter(memberships__user=request.user)
    projects = projects.annotate(n_items=Count("items", distinct=True), n_members=Count("memberships", distinct=True))
    mine = set(ProjectMembership.objects.filter(user=request.user).values_list("project_id", flat=True))
    return render(request, "annotation/project_list.html", {"projects": projects, "manager": manager, "mine": mine})


@login_required
def project_create(request):
    _manager_only(request)
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            fields = form.project_fields()
            project = actions.create_project(created_by=request.user, **fields)
        except DuetError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Project {project.name!r} created. Import items and add members next.")
            return redirect("annotation:detail", pk=project.pk)
    return render(request, "annotation/project_form.html", {"form": form, "project": None})


@login_required
def project_edit(request, pk):
    _manager_only(request)
    project = get_object_or_404(Project, pk=pk)
    form = ProjectForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        try:
            # The form's fields were written onto `project` by is_valid; reload so the
            # action sees the stored state and applies the change itself.
            actions.update_project(Project.objects.get(pk=pk), **form.project_fields())
        except DuetError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Project saved.")
            return redirect("annotation:detail", pk=project.pk)
    return render(request, "annotation/project_form.html", {"form": form, "project": project})


@login_required
def project_detail(request, pk):
    project = _visible_project(request, pk)
    manager = actions.can_manage(request.user)
    membership = ProjectMembership.objects.filter(project=project, user=request.user).first()
    progress = queue.project_progress(project, timezone.now())
    context = {
        "project": project,
        "manager": manager,
        "membership": membership,
        "progress": progress,
        "mine": queue.annotator_progress(project, request.user) if membership else None,
        "schema": parse_schema(project.schema),
        "guidelines_html": render_markdown(project.guidelines),
        "can_review": actions.can_adjudicate(project, request.user),
        "can_join": membership is None and actions.can_join(project, request.user),
        "warning": queue.quality_warning(project, membership) if membership else "",
    }
    if manager:
        context["import_form"] = ImportForm()
        context["items"] = (
            ProjectItem.objects.filter(project=project)
            .select_related("comparison__prompt")
            .annotate(done=Count("assignments", filter=Q(assignments__status=AssignmentStatus.COMPLETED)))
            .order_by("id")[:ITEMS_SHOWN]
        )
        context["items_shown"] = ITEMS_SHOWN
        context["import_jobs"] = ImportJob.objects.filter(project=project).order_by("-id")[:10]
    return render(request, "annotation/project_detail.html", context)


@login_required
@require_POST
def project_import(request, pk):
    """The import form's target. static/annotation/import.js posts here asking for JSON and
    shows the upload's progress and then the result in place; without script the page
    redirects back with the result as a message. The upload goes through the storage, as a
    background import's does (`import_jobs.import_now`)."""
    _manager_only(request)
    project = get_object_or_404(Project, pk=pk)
    wants_json = "application/json" in request.headers.get("Accept", "")
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        problem = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        return _import_answer(request, pk, wants_json, ok=False, message=f"Nothing was imported. {problem}")
    data = form.cleaned_data
    try:
        summary = import_jobs.import_now(
            project, data["file"], data["file"].name, data["format"], media_zip=data.get("media_zip"),
            seed=data.get("seed") or 0,
        )  # fmt: skip
    except DuetError as exc:
        return _import_answer(request, pk, wants_json, ok=False, message=f"Nothing was imported. {exc.message}")
    return _import_answer(request, pk, wants_json, ok=True, message=f"Imported {data['file'].name}: {summary}.",
                          summary=summary.as_dict())  # fmt: skip


def _import_job_action(request, pk, job_id, act, done: str):
    """Cancel or retry an import run in the worker: whoever may import."""
    _manager_only(request)
    job = get_object_or_404(ImportJob, pk=job_id, project_id=pk)
    try:
        job = act(job)
    except DuetError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done.format(job=job))
    return redirect("annotation:detail", pk=pk)


@login_required
@require_POST
def import_job_cancel(request, pk, job_id):
    return _import_job_action(request, pk, job_id, lifecycle.cancel, "Import {job.pk}: cancellation requested.")


@login_required
@require_POST
def import_job_retry(request, pk, job_id):
    return _import_job_action(request, pk, job_id, lifecycle.retry,
                              "Import {job.pk} is queued again (attempt {job.attempts}).")


def _import_answer(request, pk, wants_json: bool, *, ok: bool, message: str, summary: dict | None = None):
    if wants_json:
        progress = queue.project_progress(Project.objects.get(pk=pk), timezone.now())
        return JsonResponse(
            {"ok": ok, "message": message, "summary": summary,
             "items": progress["items"], "check_items": progress["check_items"], "routes": progress["routes"]},
            status=200 if ok else 400,
        )  # fmt: skip
    (messages.success if ok else messages.error)(request, message)
    return redirect("annotation:detail", pk=pk)


@login_required
def project_members(request, pk):
    _manager_only(request)
    project = get_object_or_404(Project, pk=pk)
    form = MemberForm(request.POST or None) if request.POST.get("op") == "add" else MemberForm()
    if request.method == "POST":
        op = request.POST.get("op")
        if op == "add" and form.is_valid():
            user = get_user_model().objects.filter(username=form.cleaned_data["username"]).first()
            if user is None:
                form.add_error("username", "No user with that name.")
            else:
                actions.add_member(project, user, form.cleaned_data["role"])
                messages.success(request, f"Added {user.username} as {form.cleaned_data['role']}.")
                return redirect("annotation:members", pk=pk)
        elif op == "remove":
            user = get_object_or_404(get_user_model(), pk=request.POST.get("user"))
            actions.remove_member(project, user)
            messages.success(request, f"{user.username} was removed; their judgments stay.")
            return redirect("annotation:members", pk=pk)
    rows = queue.annotator_rows(project)
    return render(request, "annotation/members.html", {"project": project, "form": form, "rows": rows})


@login_required
@require_POST
def project_join(request, pk):
    """The project's creator, researchers and admins add themselves as annotators."""
    project = get_object_or_404(Project, pk=pk)
    if not actions.can_join(project, request.user):
        raise PageRefused(
            "Only the project's creator, researchers and admins may add themselves to a project.",
            "Ask the researcher who runs it to add you.",
        )
    if not ProjectMembership.objects.filter(project=project, user=request.user).exists():
        actions.add_member(project, request.user, MembershipRole.ANNOTATOR)
    messages.success(request, f"You joined {project.name!r} as an annotator.")
    return redirect("annotation:work", pk=project.pk)


def _api_urls(project: Project) -> dict | None:
    """The API routes the task page calls; None until config/urls.py includes
    annotation.api.urls (the page then says so instead of failing)."""
    try:
        return {
            "next": reverse("annotation_api:project-next", args=[project.pk]),
            # The script swaps in the assignment id for 0.
            "judgment": reverse("annotation_api:project-judgment", args=[project.pk, 0]),
            "skip": reverse("annotation_api:project-skip", args=[project.pk, 0]),
        }
    except NoReverseMatch:
        return None


@login_required
def work(request, pk):
    project = get_object_or_404(Project, pk=pk)
    membership = ProjectMembership.objects.filter(project=project, user=request.user).first()
    if membership is None:
        raise _not_a_member(request, project, "annotate it")
    schema = parse_schema(project.schema)
    return render(
        request,
        "annotation/work.html",
        {
            "project": project,
            "schema": schema,
            "aspects": [
                {**aspect.to_dict(), "points": list(range(1, aspect.points + 1))} for aspect in schema.aspects
            ],
            "verdicts": [(verdict, VERDICT_LABELS[verdict], VERDICT_KEYS[verdict]) for verdict in schema.verdicts],
            "guidelines_html": render_markdown(project.guidelines),
            "api": _api_urls(project),
            "audio_min_play_seconds": settings.AUDIO_MIN_PLAY_SECONDS,
        },
    )


@login_required
def review(request, pk):
    project = get_object_or_404(Project, pk=pk)
    if not actions.can_adjudicate(project, request.user):
        raise PageRefused(
            "Only the project's reviewers, researchers and admins review its conflicts.",
            "Ask the researcher who runs the project to make you a reviewer.",
        )
    items = ProjectItem.objects.filter(pk__in=queue.conflicting_item_ids(project)).select_related("comparison__prompt")
    return render(request, "annotation/review.html", {"project": project, "items": items})


@login_required
def item_detail(request, pk, item_pk):
    project = get_object_or_404(Project, pk=pk)
    if not actions.can_adjudicate(project, request.user):
        raise PageRefused(
            "Only the project's reviewers, researchers and admins see the judgments of an item.",
            "Ask the researcher who runs the project to make you a reviewer.",
        )
    item = get_object_or_404(
        ProjectItem.objects.select_related("comparison__prompt", "comparison__output_a", "comparison__output_b"),
        project=project,
        pk=item_pk,
    )
    form = AdjudicateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.adjudicate(item, request.user, form.cleaned_data["verdict"], form.cleaned_data["note"])
        except DuetError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Item {item.external_id} settled as {form.cleaned_data['verdict']}.")
            return redirect("annotation:review", pk=pk)
    judgments = (
        Judgment.objects.filter(comparison=item.comparison, judge__kind__in=HUMAN_JUDGE_KINDS)
        .select_related("judge", "supersedes", "judge__user")
        .order_by("id")
    )
    comparison = item.comparison
    return render(
        request,
        "annotation/item.html",
        {
            "project": project,
            "item": item,
            "form": form,
            "judgments": judgments,
            "prompt_html": render_markdown(comparison.prompt.text),
            "a_html": render_markdown(comparison.output_a.text),
            "b_html": render_markdown(comparison.output_b.text),
            "assignments": Assignment.objects.filter(item=item).select_related("annotator"),
        },
    )

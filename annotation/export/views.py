"""Exports over HTTP: a JSON API and an admin page, both queueing `export_dataset_task`
and serving the finished files. Researchers and admins only: an export carries every
judgment (the `arena.view_judgment` permission).

    POST /api/annotation/exports/                  {format, project | arena, aggregate, exclude_flagged, ...} -> 202 job
    GET  /api/annotation/exports/                  recent jobs
    GET  /api/annotation/exports/<id>/             one job: status, progress, result
    GET  /api/annotation/exports/<id>/download/    the rows (?part=media: the media zip)
    POST /api/annotation/exports/<id>/cancel/      a queued export at once, a running one between chunks
    POST /api/annotation/exports/<id>/retry/       a failed or cancelled export again, same options

The page (`export_page`) offers the same with a form, follows running exports through the
JSON status above (static/annotation/export.js), downloads at ?download=<id>, and cancels
or retries a job with a POST of `cancel` or `retry` = <id>.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from arena.errors import InvalidInput, NotFound
from arena.jobs import lifecycle

from . import jobs
from .options import AGGREGATIONS, FORMATS, SOURCES, ExportError

EXPORT_PERMISSION = "arena.view_judgment"


def can_export(user) -> bool:
    return user.is_authenticated and user.has_perm(EXPORT_PERMISSION)


class CanExport(BasePermission):
    message = "only researchers and admins export judgments"

    def has_permission(self, request, view):
        return can_export(request.user)


class ExportRequestSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS)
    project = serializers.CharField(required=False)
    arena = serializers.CharField(required=False, help_text='an arena name, or "all"')
    aggregate = serializers.ChoiceField(choices=AGGREGATIONS, default="dawid-skene")
    min_confidence = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.0)
    include_ties = serializers.BooleanField(default=False)
    source = serializers.ChoiceField(choices=SOURCES, default="human")
    exclude_flagged = serializers.BooleanField(
        required=False, allow_null=True, default=None,
        help_text="leave out judgments of voters flagged for review (default: DUET_EXCLUDE_FLAGGED_VOTERS)",
    )  # fmt: skip


def start_export(data: dict, user) -> jobs.ExportJob:
    """Check the scope exists, then create and queue the job. Raises InvalidInput."""
    # Imported here: the selection brings the quality math, not needed to start the web process.
    from .selection import Selection, SelectionError

    try:
        Selection.resolve(project=data.get("project"), arena=data.get("arena"), source=data.get("source", "human"))
        return jobs.queue_export(data, requested_by=user.get_username())
    except (SelectionError, ExportError) as exc:
        raise InvalidInput(str(exc)) from None


def _job_payload(request, job: jobs.ExportJob, job_path: str) -> dict:
    # Links are built from the request's own path, so the views work wherever they are
    # mounted: <jobs>/<id>/ and <jobs>/<id>/download/.
    payload = jobs.job_payload(job)
    payload["url"] = request.build_absolute_uri(job_path)
    if job.status == jobs.DONE:
        payload["download"] = {
            part: request.build_absolute_uri(job_path + "download/" + ("?part=media" if part == "media" else ""))
            for part in job.files
        }
    return payload


class ExportJobsView(APIView):
    permission_classes = [CanExport]

    @extend_schema(request=ExportRequestSerializer, responses={202: dict})
    def post(self, request):
        serializer = ExportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = {key: value for key, value in serializer.validated_data.items() if value is not None}
        job = start_export(data, request.user)
        return Response(_job_payload(request, job, f"{request.path}{job.pk}/"), status=status.HTTP_202_ACCEPTED)

    @extend_schema(operation_id="annotation_exports_list", responses={200: dict})
    def get(self, request):
        return Response(
            {"results": [_job_payload(request, job, f"{request.path}{job.pk}/") for job in jobs.recent_jobs()]}
        )


class ExportJobView(APIView):
    permission_classes = [CanExport]

    @extend_schema(responses={200: dict})
    def get(self, request, job_id: str):
        job = jobs.load_job(job_id)
        if job is None:
            raise NotFound("no such export")
        return Response(_job_payload(request, job, request.path))


def _existing_job(job_id: str) -> jobs.ExportJob:
    job = jobs.load_job(job_id)
    if job is None:
        raise NotFound("no such export")
    return job


class CancelExportView(APIView):
    """Cancel an export: a queued one at once, a running one between chunks."""

    permission_classes = [CanExport]

    @extend_schema(request=None, responses={200: dict})
    def post(self, request, job_id: str):
        job = lifecycle.cancel(_existing_job(job_id))
        return Response(_job_payload(request, job, request.path.removesuffix("cancel/")))


class RetryExportView(APIView):
    """Queue a failed or cancelled export again with the same options (its next attempt)."""

    permission_classes = [CanExport]

    @extend_schema(request=None, responses={202: dict})
    def post(self, request, job_id: str):
        job = lifecycle.retry(_existing_job(job_id))
        return Response(_job_payload(request, job, request.path.removesuffix("retry/")),
                        status=status.HTTP_202_ACCEPTED)  # fmt: skip


class ExportDownloadView(APIView):
    """The finished export's rows, or its media zip with ?part=media."""

    permission_classes = [CanExport]

    @extend_schema(responses={200: bytes})
    def get(self, request, job_id: str):
        return _file_response(job_id, request.query_params.get("part", "rows"))


def _file_response(job_id: str, part: str) -> FileResponse:
    job = jobs.load_job(job_id)
    if job is None or job.status != jobs.DONE or part not in job.files:
        raise Http404("no such export file")
    try:
        handle, filename = jobs.open_part(job, part)
    except jobs.PartGone as gone:
        raise Http404(f"{gone}; export again") from None
    # FileResponse streams the file in blocks and closes it when sent.
    return FileResponse(handle, as_attachment=True, filename=filename)


# --- the page -------------------------------------------------------------------------------


def export_page(request):
    """Choose a scope, format and options; follow recent jobs and download."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not can_export(request.user):
        raise PermissionDenied("Only researchers and admins export judgments: an export holds every annotator's work.")
    from annotation.models import Project
    from arena.models import Arena

    if "download" in request.GET:
        return _file_response(request.GET["download"], request.GET.get("part", "rows"))
    if request.method == "POST" and ("cancel" in request.POST or "retry" in request.POST):
        act, job_id = (lifecycle.cancel, request.POST["cancel"]) if "cancel" in request.POST else (
            lifecycle.retry, request.POST["retry"])  # fmt: skip
        job = jobs.load_job(job_id)
        if job is None:
            raise Http404("no such export")
        try:
            job = act(job)
            messages.success(request, f"Export {job.pk[:8]}: " + (
                "cancellation requested." if act is lifecycle.cancel else f"queued again (attempt {job.attempts})."))
        except InvalidInput as exc:
            messages.error(request, exc.message)
        return redirect(request.path)
    if request.method == "POST":
        form = ExportRequestSerializer(data=_form_data(request.POST))
        if form.is_valid():
            try:
                job = start_export(dict(form.validated_data), request.user)
                messages.success(request, f"Export {job.pk[:8]} queued.")
                return redirect(request.path)
            except InvalidInput as exc:
                messages.error(request, exc.message)
        else:
            messages.error(request, "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in form.errors.items()))
    context = {
        "projects": Project.objects.order_by("name").values_list("name", flat=True),
        "arenas": Arena.objects.order_by("name").values_list("name", flat=True),
        "formats": FORMATS,
        "aggregations": AGGREGATIONS,
        "sources": SOURCES,
        "exclude_flagged": settings.EXCLUDE_FLAGGED_VOTERS,
        "jobs": jobs.recent_jobs(),
        "target": request.GET.get("target", ""),
    }
    return render(request, "annotation/export.html", context)


def _form_data(post) -> dict:
    # The scope arrives as one choice: "project:NAME", "arena:NAME" or "arena:all".
    scope, _, name = post.get("target", "").partition(":")
    data = {key: post[key] for key in ("format", "aggregate", "min_confidence", "source") if post.get(key)}
    data["include_ties"] = post.get("include_ties") == "on"
    data["exclude_flagged"] = post.get("exclude_flagged") == "on"
    if scope == "project":
        data["project"] = name
    elif scope == "arena":
        data["arena"] = name or "all"
    return data

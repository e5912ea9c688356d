"""The annotation API. Views parse, authorise and call one action each."""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from arena.api.serializers import ErrorSerializer
from arena.jobs import lifecycle

from .. import actions, import_jobs
from .. import assignment as queue
from ..errors import NotAllowed, NotFound
from ..models import ImportJob, Project, ProjectItem, ProjectMembership
from ..presenters import submission_payload, task_payload
from . import serializers


def _require(user, permission: str) -> None:
    if not user.has_perm(permission):
        raise NotAllowed("only researchers and admins manage projects")


class ProjectViewSet(viewsets.ModelViewSet):
    """Projects: researchers and admins manage them; annotators see the ones they belong to."""

    queryset = Project.objects.all()  # narrowed per user in get_queryset
    serializer_class = serializers.ProjectSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        user = self.request.user
        projects = Project.objects.all()
        if actions.can_manage(user):
            return projects
        return projects.filter(memberships__user=user)

    # The permission is checked before the body is validated, so an annotator gets 403
    # whatever they send, never a 400 that tells them what a valid project looks like.
    def create(self, request, *args, **kwargs):
        _require(request.user, "annotation.add_project")
        return super().create(request, *args, **kwargs)

    def update(self, request, *args, **kwargs):  # PATCH too (partial_update calls update)
        _require(request.user, "annotation.change_project")
        return super().update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        _require(request.user, "annotation.delete_project")
        return super().destroy(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.instance = actions.create_project(created_by=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = actions.update_project(serializer.instance, **serializer.validated_data)

    # --- import -----------------------------------------------------------------------------

    @extend_schema(request=serializers.ImportRequestSerializer,
                   responses={201: serializers.ImportSummarySerializer, 202: dict, 400: ErrorSerializer,
                              403: ErrorSerializer})  # fmt: skip
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser], url_path="import")
    def import_items(self, request, pk=None):
        project = self.get_object()
        _require(request.user, "annotation.add_projectitem")
        shape = serializers.ImportRequestSerializer(data=request.data)
        shape.is_valid(raise_exception=True)
        data = shape.validated_data
        upload = data["file"]
        if data["background"]:
            job = import_jobs.queue_import(project, upload, upload.name, data["format"], media_zip=data.get("media_zip"),
                                           seed=data["seed"], user=request.user)  # fmt: skip
            return Response(import_jobs.job_payload(job), status=status.HTTP_202_ACCEPTED)
        summary = import_jobs.import_now(
            project, upload, upload.name, data["format"], media_zip=data.get("media_zip"), seed=data["seed"]
        )
        return Response(summary.as_dict(), status=status.HTTP_201_CREATED)

    # --- the annotator's loop ---------------------------------------------------------------

    @extend_schema(request=None, responses={200: dict, 403: ErrorSerializer, 404: ErrorSerializer})
    @action(detail=True, methods=["get"])
    def next(self, request, pk=None):
        project = self.get_object()
        assignment = actions.next_assignment(project, request.user)
        membership = actions.membership_for(project, request.user)
        return Response(task_payload(project, membership, assignment))

    @extend_schema(request=serializers.SubmitRequestSerializer,
                   responses={201: dict, 400: ErrorSerializer, 403: ErrorSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"], url_path=r"assignments/(?P<assignment_id>\d+)/judgment")
    def judgment(self, request, pk=None, assignment_id=None):
        project = self.get_object()
        shape = serializers.SubmitRequestSerializer(data=request.data)
        shape.is_valid(raise_exception=True)
        data = shape.validated_data
        submission = actions.check_submission(
            project,
            request.user,
            assignment_id=assignment_id,
            token=data["token"],
            verdict=data["verdict"],
            aspects=data.get("aspects"),
            rationale=data.get("rationale", ""),
            time_to_vote_ms=data.get("time_to_vote_ms"),
            play_events=[dict(event) for event in data.get("play_events", [])],
        )
        result = actions.do_record_submission(submission)
        return Response(submission_payload(project, result), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: dict, 404: ErrorSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"], url_path=r"assignments/(?P<assignment_id>\d+)/skip")
    def skip(self, request, pk=None, assignment_id=None):
        project = self.get_object()
        assignment = actions.skip_assignment(project, request.user, assignment_id)
        return Response({"assignment": assignment.pk, "status": assignment.status,
                         "progress": queue.annotator_progress(project, request.user)})  # fmt: skip

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["get"])
    def progress(self, request, pk=None):
        project = self.get_object()
        body = queue.project_progress(project, timezone.now())
        if not actions.can_manage(request.user):
            # Annotators see the project's totals and their own numbers, not each other's.
            body.pop("annotators")
        if ProjectMembership.objects.filter(project=project, user=request.user).exists():
            body["mine"] = queue.annotator_progress(project, request.user)
        return Response(body)

    # --- members ----------------------------------------------------------------------------

    @extend_schema(request=serializers.AddMemberSerializer, responses={200: serializers.MemberSerializer(many=True)})
    @action(detail=True, methods=["get", "post"])
    def members(self, request, pk=None):
        project = self.get_object()
        _require(request.user, "annotation.change_projectmembership")
        if request.method == "POST":
            shape = serializers.AddMemberSerializer(data=request.data)
            shape.is_valid(raise_exception=True)
            user = get_user_model().objects.filter(username=shape.validated_data["username"]).first()
            if user is None:
                raise NotFound(f"no user named {shape.validated_data['username']!r}")
            actions.add_member(project, user, shape.validated_data["role"])
        memberships = project.memberships.select_related("user")
        return Response(serializers.MemberSerializer(memberships, many=True).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<user_id>\d+)")
    def remove_member(self, request, pk=None, user_id=None):
        project = self.get_object()
        _require(request.user, "annotation.delete_projectmembership")
        actions.remove_member(project, get_object_or_404(get_user_model(), pk=user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)

    # --- review -----------------------------------------------------------------------------

    @extend_schema(request=None, responses={200: serializers.ItemSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def conflicts(self, request, pk=None):
        project = self.get_object()
        if not actions.can_adjudicate(project, request.user):
            raise NotAllowed("only the project's reviewers, researchers and admins see conflicts")
        items = ProjectItem.objects.filter(pk__in=queue.conflicting_item_ids(project)).select_related(
            "comparison__prompt"
        )
        return Response(serializers.ItemSerializer(items, many=True).data)

    @extend_schema(request=serializers.AdjudicateRequestSerializer, responses={201: dict, 403: ErrorSerializer})
    @action(detail=True, methods=["post"], url_path=r"items/(?P<item_id>\d+)/adjudicate")
    def adjudicate(self, request, pk=None, item_id=None):
        project = self.get_object()
        item = get_object_or_404(ProjectItem, project=project, pk=item_id)
        shape = serializers.AdjudicateRequestSerializer(data=request.data)
        shape.is_valid(raise_exception=True)
        adjudication = actions.adjudicate(item, request.user, **shape.validated_data)
        return Response(
            {"adjudication": adjudication.pk, "item": item.pk, "verdict": adjudication.verdict},
            status=status.HTTP_201_CREATED,
        )


class ImportJobViewSet(viewsets.ReadOnlyModelViewSet):
    """Imports run in the worker (`POST /api/annotation/projects/<id>/import/` with
    `background`): follow one, cancel it, retry it. Whoever may import into projects."""

    def get_queryset(self):
        _require(self.request.user, "annotation.add_projectitem")
        return ImportJob.objects.select_related("project").order_by("-id")

    queryset = ImportJob.objects.none()  # for the schema; get_queryset answers requests

    @extend_schema(operation_id="annotation_imports_list", responses={200: dict, 403: ErrorSerializer})
    def list(self, request, *args, **kwargs):
        """The last 50 imports run in the worker."""
        return Response([import_jobs.job_payload(job) for job in self.get_queryset()[:50]])

    @extend_schema(responses={200: dict, 403: ErrorSerializer, 404: ErrorSerializer})
    def retrieve(self, request, *args, **kwargs):
        return Response(import_jobs.job_payload(self.get_object()))

    @extend_schema(request=None, responses={200: dict, 400: ErrorSerializer, 403: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return Response(import_jobs.job_payload(lifecycle.cancel(self.get_object())))

    @extend_schema(request=None, responses={202: dict, 400: ErrorSerializer, 403: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        job = lifecycle.retry(self.get_object())
        return Response(import_jobs.job_payload(job), status=status.HTTP_202_ACCEPTED)

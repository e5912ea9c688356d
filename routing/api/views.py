"""The routing API: a project's routing figures, its decisions, starting judging and routing
jobs, and their progress. Views authorise and call one action or query each."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Project
from arena.api.serializers import ErrorSerializer
from arena.errors import NotAllowed, NotFound

from .. import actions, report
from ..models import DecisionRoute, JobKind, JudgingJob, RoutingDecision

VIEW_PERMISSION = "routing.view_routingdecision"
JOB_PERMISSION = "routing.add_judgingjob"


def _require(user, *permissions: str) -> None:
    if not all(user.has_perm(permission) for permission in permissions):
        raise NotAllowed("only researchers and admins use routing")


class JudgeRequestSerializer(serializers.Serializer):
    judge = serializers.CharField(required=False, allow_blank=True,
                                  help_text="a judge spec; the project's own judge when left out")
    limit = serializers.IntegerField(required=False, min_value=1, help_text="judge at most this many comparisons")


class RoutingView(APIView):
    permission_classes = [IsAuthenticated]

    def project(self, request, pk, *permissions) -> Project:
        _require(request.user, VIEW_PERMISSION, *permissions)
        return get_object_or_404(Project, pk=pk)


class ProjectsView(RoutingView):
    @extend_schema(operation_id="routing_projects_list", responses={200: dict, 403: ErrorSerializer})
    def get(self, request):
        """Every project's policy, budget, items per route and judge."""
        _require(request.user, VIEW_PERMISSION)
        rows = report.overview_rows(list(Project.objects.order_by("name")))
        return Response([
            {"id": row["project"].pk, "name": row["project"].name, "policy": row["policy"], "budget": row["budget"],
             "items": row["items"], "routes": row["routes"], "judge_spec": row["judge_spec"], "judge": row["judge"],
             "active_job": report.job_dict(row["job"]) if row["job"] else None}
            for row in rows
        ])  # fmt: skip


class ProjectSummaryView(RoutingView):
    @extend_schema(
        parameters=[OpenApiParameter("judge", int, description="figures for this judge (id); default: the project's")],
        responses={200: dict, 403: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request, pk):
        """Routes, budget, judge-human agreement (with and without ties, per category), order
        consistency, estimated label quality of the mix, notes and the active job."""
        project = self.project(request, pk)
        judge = None
        if request.query_params.get("judge"):
            judge = next((j for j in report.project_judges(project) if str(j.pk) == request.query_params["judge"]),
                         None)  # fmt: skip
        return Response(report.project_report(project, judge=judge).to_dict())


class DecisionsView(RoutingView):
    @extend_schema(
        parameters=[OpenApiParameter("route", str, enum=DecisionRoute.values), OpenApiParameter("limit", int),
                    OpenApiParameter("offset", int)],
        responses={200: dict, 403: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request, pk):
        """Every routing decision on the project, newest first: route, reason, policy, score,
        the judge's verdict, the budget state and the features the policy saw."""
        project = self.project(request, pk)
        decisions = RoutingDecision.objects.filter(project=project).select_related("item", "judge")
        route = request.query_params.get("route")
        if route:
            decisions = decisions.filter(route=route)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(decisions, request, view=self)
        return paginator.get_paginated_response([report.decision_dict(decision) for decision in page])


class JudgeBoardsView(RoutingView):
    @extend_schema(
        operation_id="routing_project_judge_boards",
        parameters=[OpenApiParameter("judge", int, description="only this judge (id); default: every automatic judge")],
        responses={200: dict, 403: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request, pk):
        """Judge versus people: per automatic judge, the board fitted from its verdicts beside the
        board fitted from human votes on the same comparisons (Bradley-Terry, sandwich intervals),
        Spearman and Kendall between them, and the systems whose rank differs most."""
        from ..boards import judge_boards

        project = self.project(request, pk)
        judge = None
        if request.query_params.get("judge"):
            judge = next((j for j in report.project_judges(project) if str(j.pk) == request.query_params["judge"]),
                         None)  # fmt: skip
            if judge is None:
                raise NotFound(f"no automatic judge {request.query_params['judge']} has judged this project")
        return Response({"project": project.pk, "name": project.name,
                         "judges": [entry.to_dict() for entry in judge_boards(project, judge)]})  # fmt: skip


class ProjectJobsView(RoutingView):
    @extend_schema(responses={200: dict, 403: ErrorSerializer, 404: ErrorSerializer})
    def get(self, request, pk):
        """The project's last 20 judging and routing jobs."""
        project = self.project(request, pk)
        jobs = JudgingJob.objects.filter(project=project).select_related("judge").order_by("-id")[:20]
        return Response([report.job_dict(job) for job in jobs])


class StartJudgingView(RoutingView):
    @extend_schema(request=JudgeRequestSerializer, responses={202: dict, 400: ErrorSerializer, 403: ErrorSerializer})
    def post(self, request, pk):
        """Queue a judge over the project's comparisons (those it has not judged) on the judging queue."""
        project = self.project(request, pk, JOB_PERMISSION)
        shape = JudgeRequestSerializer(data=request.data)
        shape.is_valid(raise_exception=True)
        data = shape.validated_data
        job = actions.queue_job(project, JobKind.JUDGE, spec=data.get("judge") or None, limit=data.get("limit"),
                                trigger="api", user=request.user)  # fmt: skip
        return Response(report.job_dict(job), status=status.HTTP_202_ACCEPTED)


class StartRoutingView(RoutingView):
    @extend_schema(request=None, responses={202: dict, 400: ErrorSerializer, 403: ErrorSerializer})
    def post(self, request, pk):
        """Queue the routing of the project's pending items (judged first by the project's judge)."""
        project = self.project(request, pk, JOB_PERMISSION)
        job = actions.queue_job(project, JobKind.ROUTE, trigger="api", user=request.user)
        return Response(report.job_dict(job), status=status.HTTP_202_ACCEPTED)


class JobView(RoutingView):
    @extend_schema(responses={200: dict, 403: ErrorSerializer, 404: ErrorSerializer})
    def get(self, request, job_id):
        """A job's progress: status, done of total, counts, error."""
        _require(request.user, VIEW_PERMISSION)
        return Response(report.job_dict(actions.get_job(job_id)))


class CancelJobView(RoutingView):
    @extend_schema(request=None, responses={200: dict, 400: ErrorSerializer, 403: ErrorSerializer})
    def post(self, request, job_id):
        """Cancel a job: a queued one at once, a running one after its current batch."""
        _require(request.user, VIEW_PERMISSION, JOB_PERMISSION)
        return Response(report.job_dict(actions.cancel_job(actions.get_job(job_id))))


class RetryJobView(RoutingView):
    @extend_schema(request=None, responses={202: dict, 400: ErrorSerializer, 403: ErrorSerializer})
    def post(self, request, job_id):
        """Queue a failed or cancelled job again with the same settings (its next attempt)."""
        _require(request.user, VIEW_PERMISSION, JOB_PERMISSION)
        job = actions.retry_job(actions.get_job(job_id))
        return Response(report.job_dict(job), status=status.HTTP_202_ACCEPTED)

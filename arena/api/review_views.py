"""Voters for review: the judges flag_outliers (or a reviewer) flagged, for researchers and
admins. Read-only: flags are cleared or set in the Django admin, whose actions also queue
a leaderboard refresh.

    GET /api/arena/judges/?flagged=1    flagged voters, most recently flagged first
    GET /api/arena/judges/?flagged=0    voters not flagged
"""

from django.db.models import Count, F, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets

from arena.errors import InvalidInput
from arena.models import Judge, Judgment

from . import serializers
from .permissions import ModelPermissions

FLAGGED_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@extend_schema_view(
    list=extend_schema(parameters=[OpenApiParameter("flagged", bool, description="flagged (1) or unflagged (0) only")])
)
class JudgeReviewViewSet(viewsets.ReadOnlyModelViewSet):
    """Judges with their review flags. The `view_judge` permission: researchers and admins,
    never annotators (a flag's reason describes how someone voted)."""

    serializer_class = serializers.JudgeReviewSerializer
    permission_classes = [ModelPermissions]
    queryset = Judge.objects.all()  # for ModelPermissions; narrowed in get_queryset

    def get_queryset(self):
        # A correlated count, evaluated for the page of judges only, not a GROUP BY over
        # every judgment in the database.
        n_judgments = (
            Judgment.objects.filter(judge=OuterRef("pk")).order_by().values("judge")
            .annotate(n=Count("pk")).values("n")
        )  # fmt: skip
        judges = Judge.objects.annotate(
            n_judgments=Coalesce(Subquery(n_judgments, output_field=IntegerField()), 0)
        ).order_by(F("flagged_at").desc(nulls_last=True), "pk")
        flagged = self.request.query_params.get("flagged")
        if flagged is not None:
            if flagged.lower() not in FLAGGED_VALUES:
                raise InvalidInput("flagged must be 1 or 0")
            judges = judges.filter(flagged_at__isnull=not FLAGGED_VALUES[flagged.lower()])
        return judges

import json
from collections.abc import Mapping

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from arena.board.retirement import retire_system, unretire_system
from arena.errors import DuetError, InvalidInput, NotLoggedIn
from arena.models import Judgment, Modality, Output, Prompt, PromptOrigin, System
from arena.ratelimit import RateLimitedView
from arena.voting import actions
from arena.voting.presenters import comparison_payload
from arena.voting.readiness import arena_readiness, first_ready, readiness_json
from arena.voting.voters import voter_judge

from . import serializers
from .permissions import ModelPermissions


class JSONOnlyView(APIView):
    """The vote loop's endpoints answer JSON only: no renderer negotiation per request,
    and their answers are encoded here, as DRF's JSONRenderer would (compact, UTF-8, the
    two JavaScript line separators escaped), without its per-response machinery."""

    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request, force=False):
        renderer = self.renderer_classes[0]()
        return renderer, renderer.media_type

    @staticmethod
    def answer(body: dict, code: int = status.HTTP_200_OK) -> HttpResponse:
        text = json.dumps(body, cls=DjangoJSONEncoder, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return HttpResponse(text.encode(), status=code, content_type="application/json")


class NextComparisonView(RateLimitedView, JSONOnlyView):
    """The next comparison for the current voter, without any system identity."""

    permission_classes = [permissions.AllowAny]  # voter_judge decides, so the open arena works
    rate_limit_scope = "next"  # DUET_NEXT_RATE_LIMIT per voter, DUET_CLIENT_RATE_LIMIT per address

    @extend_schema(
        parameters=[OpenApiParameter("modality", str, enum=Modality.values, default=Modality.TEXT)],
        responses={200: serializers.NextComparisonSerializer, 401: serializers.ErrorSerializer,
                   404: serializers.ErrorSerializer, 429: serializers.ErrorSerializer},
    )  # fmt: skip
    def get(self, request):
        judge = voter_judge(request)
        comparison = actions.next_comparison(judge, request.query_params.get("modality", Modality.TEXT))
        return self.answer(comparison_payload(comparison, actions.issue_vote_token(comparison, judge)))


class ReadinessView(JSONOnlyView):
    """Per modality, whether the pool has a comparison to serve and how many answers are
    ready; the arena page polls it while answers are generated. Counts only, no systems."""

    permission_classes = [permissions.AllowAny]  # logged-in users, or anyone in an open arena

    @extend_schema(
        parameters=[OpenApiParameter("modality", str, enum=Modality.values,
                                     description="the modality on screen (default: the first ready one)")],
        responses={200: serializers.ReadinessSerializer, 401: serializers.ErrorSerializer,
                   400: serializers.ErrorSerializer},
    )  # fmt: skip
    def get(self, request):
        if not (request.user.is_authenticated or settings.OPEN_ARENA):
            raise NotLoggedIn("log in to see the arena")
        readiness = arena_readiness()
        current = request.query_params.get("modality") or first_ready(readiness)
        if current not in Modality.values:
            raise InvalidInput(f"unknown modality {current!r}; expected one of {', '.join(Modality.values)}")
        return self.answer(readiness_json(readiness, current))


def _vote_shape(data) -> Mapping:
    """The shape VoteRequestSerializer documents, checked by hand: on the vote path the
    serializer cost more CPU than writing the judgment (bench/load.py). Values are
    checked by `check_vote`."""
    if not isinstance(data, Mapping):
        raise InvalidInput("the request body must be an object with token and verdict")
    for name in ("token", "verdict", "category"):
        if data.get(name) is not None and not isinstance(data.get(name), str):
            raise InvalidInput(f"{name} must be a string")
    if isinstance(data.get("time_to_vote_ms"), bool):
        raise InvalidInput("time_to_vote_ms must be a whole number of milliseconds")
    return data


def _wants_next(request) -> bool:
    return request.query_params.get("next", "").lower() in ("1", "true", "yes")


class VoteView(RateLimitedView, JSONOnlyView):
    """Record a verdict on a served comparison; the response reveals both systems. With
    ``?next=1`` it also carries the voter's next comparison, as GET /api/arena/next/ would
    answer it, so the arena page shows the next pair without another round trip."""

    permission_classes = [permissions.AllowAny]
    rate_limit_scope = "vote"  # DUET_VOTE_RATE_LIMIT per voter, DUET_CLIENT_RATE_LIMIT per address

    def rate_limit_scopes(self, request) -> tuple[str, ...]:
        # A vote that asks for the next comparison counts against both voter limits (and
        # once against the client's: it is one request).
        return ("vote", "next") if _wants_next(request) else ("vote",)

    @extend_schema(
        request=serializers.VoteRequestSerializer,
        parameters=[OpenApiParameter("next", bool, default=False,
                                     description="also serve the voter's next comparison in the same modality")],
        responses={201: serializers.VoteResponseSerializer, 200: serializers.VoteResponseSerializer,
                   400: serializers.ErrorSerializer, 403: serializers.ErrorSerializer,
                   404: serializers.ErrorSerializer, 429: serializers.ErrorSerializer},
    )  # fmt: skip
    def post(self, request):
        judge = voter_judge(request)
        data = _vote_shape(request.data)
        vote = actions.check_vote(
            token=data.get("token"),
            judge=judge,
            verdict=data.get("verdict"),
            time_to_vote_ms=data.get("time_to_vote_ms"),
            play_events=data.get("play_events"),
            category=data.get("category"),
        )
        judgment, created = actions.do_record_judgment(vote)
        body = {
            "judgment": judgment.public_id,
            "verdict": judgment.verdict,
            "duplicate": not created,
            "reveal": actions.reveal(vote.comparison),
        }
        if _wants_next(request):
            # The vote is stored whatever happens here: a refusal to serve another
            # comparison goes in the body, not the status.
            try:
                following = actions.next_comparison(judge, vote.comparison.modality)
            except DuetError as exc:
                body["next"], body["next_error"] = None, {"error": exc.code, "detail": exc.message}
            else:
                body["next"] = comparison_payload(following, actions.issue_vote_token(following, judge))
        return self.answer(body, status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CanRetireSystems(permissions.BasePermission):
    """Admins only (the arena.retire_system permission); researchers add and edit systems
    but do not take them off the board."""

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.has_perm("arena.retire_system"))


class SystemViewSet(viewsets.ModelViewSet):
    queryset = System.objects.all()
    serializer_class = serializers.SystemSerializer
    permission_classes = [ModelPermissions]
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(request=None, responses={200: serializers.SystemSerializer, 403: serializers.ErrorSerializer})
    @action(detail=True, methods=["post"], permission_classes=[CanRetireSystems])
    def retire(self, request, pk=None, format=None):
        """Retire the system: off the current board and out of matchmaking; its battles stay."""
        system = self.get_object()
        retire_system(system, by=request.user.get_username())
        return Response(self.get_serializer(system).data)

    @extend_schema(request=None, responses={200: serializers.SystemSerializer, 403: serializers.ErrorSerializer})
    @action(detail=True, methods=["post"], permission_classes=[CanRetireSystems])
    def unretire(self, request, pk=None, format=None):
        """Bring a retired system back to the board and matchmaking."""
        system = self.get_object()
        unretire_system(system)
        return Response(self.get_serializer(system).data)


class PromptViewSet(viewsets.ModelViewSet):
    queryset = Prompt.objects.all()
    serializer_class = serializers.PromptSerializer
    permission_classes = [ModelPermissions]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def perform_create(self, serializer):
        serializer.save(origin=PromptOrigin.API)


class OutputViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Outputs name their system, so only researchers and admins read them."""

    queryset = Output.objects.select_related("system", "prompt")
    serializer_class = serializers.OutputSerializer
    permission_classes = [ModelPermissions]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def perform_create(self, serializer):
        with transaction.atomic():
            serializer.save()


class JudgmentViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Judgment.objects.select_related(
        "judge", "comparison__output_a__system", "comparison__output_b__system", "supersedes"
    )
    serializer_class = serializers.JudgmentSerializer
    permission_classes = [ModelPermissions]
    lookup_field = "public_id"


def _board_reader(request) -> None:
    if not (request.user.is_authenticated or settings.OPEN_ARENA):
        raise NotLoggedIn("log in to see the leaderboard")


INCLUDE_RETIRED = OpenApiParameter(
    "include_retired", bool, description="also list retired systems (marked retired); by default they are hidden"
)


class LeaderboardView(APIView):
    """The latest leaderboard snapshot of an arena scope (the same data as the page)."""

    permission_classes = [permissions.AllowAny]  # logged-in users, or anyone in an open arena

    @extend_schema(
        parameters=[
            OpenApiParameter("arena", str, description="arena name (default: the built-in arena)"),
            OpenApiParameter("modality", str, enum=Modality.values, default=Modality.TEXT),
            OpenApiParameter("category", str),
            OpenApiParameter("style_control", bool),
            INCLUDE_RETIRED,
        ],
        responses={200: serializers.LeaderboardSerializer, 401: serializers.ErrorSerializer},
    )
    def get(self, request):
        from arena.board.views import board_json

        _board_reader(request)
        return Response(board_json(request.query_params)[3])


class SimilarLeaderboardView(RateLimitedView, APIView):
    """The arena's board for prompts like one prompt: Bradley-Terry on battles weighted by
    max(0, cos)^power between their prompt's embedding and the query's, sandwich intervals,
    Kish's effective number of votes overall and per system."""

    permission_classes = [permissions.AllowAny]  # logged-in users, or anyone in an open arena
    rate_limit_scope = "similar"  # DUET_SIMILAR_RATE_LIMIT per voter, DUET_CLIENT_RATE_LIMIT per address

    @extend_schema(
        operation_id="leaderboard_similar",
        parameters=[
            OpenApiParameter("arena", str, description="arena name (default: the built-in arena)"),
            OpenApiParameter("modality", str, enum=Modality.values, default=Modality.TEXT),
            OpenApiParameter("category", str),
            OpenApiParameter("prompt", str, description="the text of a prompt (or give prompt_id)"),
            OpenApiParameter("prompt_id", int, description="a stored prompt's id (or give prompt)"),
            OpenApiParameter("power", float, description="a battle weighs max(0, cos)^power (default 4)"),
        ],
        responses={200: dict, 400: serializers.ErrorSerializer, 401: serializers.ErrorSerializer,
                   404: serializers.ErrorSerializer, 429: serializers.ErrorSerializer},
    )  # fmt: skip
    def get(self, request):
        if not (request.user.is_authenticated or settings.OPEN_ARENA):
            raise NotLoggedIn("log in to see the leaderboard")
        from arena.board.views import resolve_scope
        from arena.board.similar import similar_board_from_params

        _, scope = resolve_scope(request.query_params)
        return Response(similar_board_from_params(request.query_params, scope, request.user))

class PersonalLeaderboardView(APIView):
    """The board of the requesting voter's own votes (the token's user, or in the open arena
    the session's voter): Bradley-Terry on their votes alone, with a note on how few they are."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("modality", str, enum=Modality.values, default=Modality.TEXT), INCLUDE_RETIRED],
        responses={200: serializers.PersonalLeaderboardSerializer, 400: serializers.ErrorSerializer,
                   401: serializers.ErrorSerializer},
    )  # fmt: skip
    def get(self, request):
        from arena.board.views import personal_json

        _board_reader(request)
        return Response(personal_json(request, request.query_params))


class ActivityView(APIView):
    """Votes per UTC day per modality in an arena (every day of the period, zeros included)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[
            OpenApiParameter("arena", str, description="arena name (default: the built-in arena)"),
            OpenApiParameter("days", int, description="the last N days up to today (default: the whole history)"),
        ],
        responses={200: serializers.ActivitySerializer, 400: serializers.ErrorSerializer,
                   401: serializers.ErrorSerializer},
    )  # fmt: skip
    def get(self, request):
        from arena.board.views import activity_json

        _board_reader(request)
        return Response(activity_json(request.query_params))

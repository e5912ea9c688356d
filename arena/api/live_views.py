"""Live battles over the API, plus the server-sent event stream the page listens to."""

import json
import time

from django.conf import settings
from django.http import JsonResponse, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from arena.errors import DuetError
from arena.live import battles as live
from arena.models import LiveBattle, LiveBattleStatus, Modality
from arena.voting.voters import voter_judge

from .serializers import ErrorSerializer, VoteResponseSerializer

# The stream polls the battle's rows; 0.1 s keeps text flowing smoothly at a handful of
# cheap primary-key reads a second per watcher.
STREAM_TICK_SECONDS = 0.1
STREAM_KEEPALIVE_SECONDS = 10


class StartLiveBattleSerializer(serializers.Serializer):
    modality = serializers.ChoiceField(choices=Modality.values, default=Modality.TEXT)
    message = serializers.CharField(allow_blank=True, trim_whitespace=False)


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField(allow_blank=True, trim_whitespace=False)


class LiveVoteSerializer(serializers.Serializer):
    verdict = serializers.CharField(allow_blank=True)


class LiveStateSerializer(serializers.Serializer):
    battle = serializers.UUIDField()
    modality = serializers.CharField()
    status = serializers.CharField()
    void_reason = serializers.CharField()
    turns = serializers.ListField(child=serializers.DictField())
    can_vote = serializers.BooleanField()
    can_follow_up = serializers.BooleanField()


class LiveBattlesView(APIView):
    permission_classes = [permissions.AllowAny]  # voter_judge decides (login or open arena)

    @extend_schema(request=StartLiveBattleSerializer, responses={201: LiveStateSerializer, 400: ErrorSerializer,
                                                                  429: ErrorSerializer})  # fmt: skip
    def post(self, request):
        judge = voter_judge(request)
        data = StartLiveBattleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        battle = live.start_live_battle(judge, data.validated_data["modality"], data.validated_data["message"])
        return Response(live.battle_state(battle), status=status.HTTP_201_CREATED)


class LiveBattleView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: LiveStateSerializer, 404: ErrorSerializer})
    def get(self, request, battle_id):
        battle = live.live_battle_for(voter_judge(request), battle_id)
        return Response(live.battle_state(battle))


class LiveMessageView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(request=MessageSerializer, responses={201: LiveStateSerializer, 400: ErrorSerializer})
    def post(self, request, battle_id):
        battle = live.live_battle_for(voter_judge(request), battle_id)
        data = MessageSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        live.send_follow_up(battle, data.validated_data["message"])
        return Response(live.battle_state(battle), status=status.HTTP_201_CREATED)


class LiveVoteView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(request=LiveVoteSerializer, responses={201: VoteResponseSerializer, 200: VoteResponseSerializer,
                                                           400: ErrorSerializer})  # fmt: skip
    def post(self, request, battle_id):
        battle = live.live_battle_for(voter_judge(request), battle_id)
        data = LiveVoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body, created = live.vote_live(battle, data.validated_data["verdict"])
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _event(name: str, payload) -> str:
    return f"event: {name}\ndata: {json.dumps(payload, default=str)}\n\n"


def live_events(request, battle_id):
    """Server-sent events: the battle's state each time it changes, until the current turn
    is complete (or void, or voted). Plain HTTP, so it works through the embedded setup and
    behind a proxy (buffering is switched off for nginx)."""
    try:
        battle = live.live_battle_for(voter_judge(request), battle_id)
    except DuetError as exc:
        return JsonResponse({"error": exc.code, "detail": exc.message}, status=exc.status_code)

    def stream():
        last, last_sent = None, time.monotonic()
        deadline = time.monotonic() + settings.LIVE_GENERATION_TIMEOUT_SECONDS + 30
        while time.monotonic() < deadline:
            state = live.battle_state(LiveBattle.objects.get(pk=battle.pk))
            encoded = json.dumps(state, default=str, sort_keys=True)
            if encoded != last:
                yield _event("state", state)
                last, last_sent = encoded, time.monotonic()
            elif time.monotonic() - last_sent > STREAM_KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            if state["status"] != LiveBattleStatus.GENERATING:
                yield _event("end", {"status": state["status"]})
                return
            time.sleep(STREAM_TICK_SECONDS)
        yield _event("end", {"status": "timeout"})

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response

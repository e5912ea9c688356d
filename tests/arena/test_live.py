import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from arena import errors, hotcache
from arena.board.snapshots import Scope, default_arena, refresh_arena
from arena.live import battles as live
from arena.live.checks import check_prompt
from arena.models import (
    Battle,
    GenerationStatus,
    Judgment,
    LiveBattleStatus,
    LiveGeneration,
    Output,
    System,
)
from arena.voting import actions


@pytest.fixture
def live_systems(db, tiny_model_dir):
    config = {"model": str(tiny_model_dir), "max_new_tokens": 12, "temperature": 0}
    return [
        System.objects.create(name="tiny-alpha", provider="transformers", provider_config=config),
        System.objects.create(name="tiny-beta", provider="transformers",
                              provider_config={**config, "system_prompt": "Be brief."}),  # fmt: skip
    ]


@pytest.fixture
def judge(annotator):
    return actions.judge_for_user(annotator)


def run_turn(battle, turn=0):
    for generation in LiveGeneration.objects.filter(battle=battle, turn=turn):
        assert live.run_live_generation(generation.pk) == GenerationStatus.DONE
    battle.refresh_from_db()


# --- prompt filter (the leak detector's tests are in test_leaks.py) --------------------------


def test_prompt_filter(settings):
    settings.PROMPT_BLOCKLIST = ["forbidden"]
    settings.PROMPT_BLOCK_PATTERNS = [r"\b\d{3}-\d{2}-\d{4}\b"]
    assert check_prompt("  hello  ") == "hello"
    with pytest.raises(errors.InvalidInput, match="blocked word"):
        check_prompt("tell me the Forbidden thing")
    with pytest.raises(errors.InvalidInput, match="blocked pattern"):
        check_prompt("my number is 123-45-6789")
    with pytest.raises(errors.InvalidInput, match="message is empty"):
        check_prompt("   ")
    settings.LIVE_MAX_MESSAGE_CHARS = 5
    with pytest.raises(errors.InvalidInput, match="the limit is 5"):
        check_prompt("too long")


class _Endpoint(BaseHTTPRequestHandler):
    delay = 0.0

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/moderations"):
            flagged = "attack" in body["input"]
            payload = {"results": [{"flagged": flagged}]}
        else:
            time.sleep(self.delay)
            payload = {"choices": [{"message": {"content": "slow answer"}}]}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except BrokenPipeError:
            pass


@pytest.fixture
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Endpoint
    server.shutdown()
    _Endpoint.delay = 0.0


def test_moderation_endpoint(settings, endpoint):
    url, _ = endpoint
    settings.MODERATION_URL = f"{url}/moderations"
    assert check_prompt("a kind question") == "a kind question"
    with pytest.raises(errors.InvalidInput, match="moderation"):
        check_prompt("plan an attack")


# --- matchmaking of live systems ----------------------------------------------------------


def test_live_candidates_need_a_live_provider_and_no_outage(db, settings):
    settings.LIVE_OUTAGE_FAILURES = 3
    ok = System.objects.create(name="ok", provider="transformers")
    System.objects.create(name="uploaded-only", provider="uploaded")
    System.objects.create(name="off", provider="transformers", is_active=False)
    System.objects.create(name="painter", provider="demo_image", modality="image")
    failing = System.objects.create(name="failing", provider="openai", live_failures=3)
    from django.utils import timezone

    System.objects.filter(pk=failing.pk).update(live_failed_at=timezone.now())
    assert set(live.live_candidates("text")) == {ok}
    # after the cool-down it gets another chance
    System.objects.filter(pk=failing.pk).update(live_failed_at=timezone.now() - timezone.timedelta(hours=1))
    assert set(live.live_candidates("text")) == {ok, failing}


def test_live_pairs_use_two_different_systems_with_random_sides(db, judge, live_systems):
    System.objects.create(name="tiny-gamma", provider="transformers", provider_config=live_systems[0].provider_config)
    firsts = set()
    for seed in range(12):
        battle = live.start_live_battle(judge, "text", f"question {seed}", rng=random.Random(seed))
        assert battle.system_a != battle.system_b
        firsts.add(battle.system_a.name)
    assert len(firsts) == 3


# --- a whole battle -----------------------------------------------------------------------


def test_live_battle_streams_follows_up_and_votes(db, judge, live_systems, django_capture_on_commit_callbacks):
    # given a battle on a voter's own prompt
    with django_capture_on_commit_callbacks() as queued:
        battle = live.start_live_battle(judge, "text", "What is a haiku?", rng=random.Random(1))
    # the two generation tasks are queued after commit (beside the new prompt's change stamp
    # and its embedding for the boards for prompts like one)
    others = [c for c in queued if getattr(c, "func", None) is not hotcache.bump and not hasattr(c, "embeds_prompts")]
    assert len(others) == 1
    state = live.battle_state(battle)
    assert state["status"] == "generating" and not state["can_vote"]
    assert "tiny-" not in json.dumps(state)  # no identities before the vote
    assert battle.prompt.origin == "user"

    # when the worker answers both sides
    run_turn(battle)
    state = live.battle_state(battle)
    assert battle.status == LiveBattleStatus.READY and state["can_vote"] and state["can_follow_up"]
    first = LiveGeneration.objects.get(battle=battle, side="a", turn=0)
    assert first.first_token_at is not None and first.first_token_at <= first.finished_at
    assert first.output.turn == 0 and first.output.text == first.text

    # and the voter follows up
    assert live.send_follow_up(battle, "Write one.") == 1
    run_turn(battle, turn=1)
    second = LiveGeneration.objects.get(battle=battle, side="b", turn=1)
    conversation = second.output.metadata["conversation"]
    assert [m["role"] for m in conversation] == ["user", "assistant", "user", "assistant"]
    assert conversation[1]["content"] == LiveGeneration.objects.get(battle=battle, side="b", turn=0).text
    assert Output.objects.filter(prompt=battle.prompt).count() == 4

    # then one vote judges the conversation and reveals the systems
    body, created = live.vote_live(battle, "b")
    assert created and body["anonymous"] is True
    assert {body["reveal"]["a"]["system"], body["reveal"]["b"]["system"]} == {"tiny-alpha", "tiny-beta"}
    judgment = Judgment.objects.get()
    assert judgment.comparison.origin == "live" and judgment.comparison.output_a.turn == 1
    assert judgment.metadata["turns"] == 2
    assert Battle.objects.get().judgment == judgment
    battle.refresh_from_db()
    repeat, created_again = live.vote_live(battle, "a")
    assert not created_again and repeat["verdict"] == "b" and Judgment.objects.count() == 1


def test_identity_leak_keeps_vote_but_off_the_public_board(db, judge, live_systems):
    battle = live.start_live_battle(judge, "text", "Who are you?", rng=random.Random(0))
    run_turn(battle)
    LiveGeneration.objects.filter(battle=battle, side="a").update(text="I am tiny-alpha, hello!")
    body, _ = live.vote_live(battle, "a")
    assert body["anonymous"] is False
    judgment = Judgment.objects.get()
    assert judgment.metadata["identity_leak"] is True and "tiny-alpha" in judgment.metadata["leaked_words"]
    assert Battle.objects.get().anonymous is False
    assert refresh_arena(default_arena()) == []  # the default (anonymous) board leaves it out
    from arena.board.snapshots import battles_for

    assert battles_for(default_arena(), Scope("text", anonymous_only=False)).count() == 1


def test_timeout_voids_the_battle(db, judge, settings, endpoint):
    url, handler = endpoint
    handler.delay = 3.0
    settings.LIVE_GENERATION_TIMEOUT_SECONDS = 1.0
    slow = System.objects.create(name="slow", provider="openai",
                                 provider_config={"base_url": url, "model": "m", "timeout": 10})  # fmt: skip
    System.objects.create(name="fast", provider="demo_image", modality="image")
    other = System.objects.create(name="other", provider="openai",
                                  provider_config={"base_url": url, "model": "m", "timeout": 10})  # fmt: skip
    battle = live.start_live_battle(judge, "text", "Hello?", rng=random.Random(0))
    assert {battle.system_a, battle.system_b} == {slow, other}
    generation = LiveGeneration.objects.get(battle=battle, side="a")
    assert live.run_live_generation(generation.pk) == GenerationStatus.FAILED
    battle.refresh_from_db()
    assert battle.status == LiveBattleStatus.VOID and "timed out" in battle.void_reason
    assert "slow" not in battle.void_reason and "other" not in battle.void_reason
    failed = LiveGeneration.objects.get(pk=generation.pk)
    assert failed.status == "failed" and "within 1 s" in failed.error
    assert System.objects.get(pk=generation.system_id).live_failures == 1
    # the other side does not run on a void battle, and nobody can vote on it
    assert live.run_live_generation(LiveGeneration.objects.get(battle=battle, side="b").pk) == "failed"
    with pytest.raises(errors.InvalidInput, match="void"):
        live.vote_live(battle, "a")
    assert not live.battle_state(battle)["can_vote"]


def test_dead_worker_is_noticed(db, judge, live_systems, settings):
    settings.LIVE_GENERATION_TIMEOUT_SECONDS = 0
    battle = live.start_live_battle(judge, "text", "Anyone there?", rng=random.Random(0))
    from django.utils import timezone

    LiveGeneration.objects.update(queued_at=timezone.now() - timezone.timedelta(seconds=60))
    state = live.battle_state(battle)
    assert state["status"] == "void" and "timed out" in state["void_reason"]


def test_prompt_rate_limit(db, judge, live_systems, settings):
    settings.LIVE_PROMPTS_PER_HOUR = 1
    live.start_live_battle(judge, "text", "one")
    with pytest.raises(errors.RateLimited, match="the limit is 1"):
        live.start_live_battle(judge, "text", "two")


def test_the_hourly_budget_counts_follow_ups_and_outlives_the_rows(db, judge, live_systems, settings):
    # given a budget of 3 prompts an hour, spent on a prompt and its follow-up
    settings.LIVE_PROMPTS_PER_HOUR = 3
    battle = live.start_live_battle(judge, "text", "one", rng=random.Random(0))
    run_turn(battle)
    live.send_follow_up(battle, "two")
    # when the voter's battles are gone (the count is the shared counter's, not the rows')
    LiveGeneration.objects.all().delete()
    live.start_live_battle(judge, "text", "three")
    # then the fourth prompt of the hour is refused, with the message the voter sees
    with pytest.raises(errors.RateLimited) as refused:
        live.start_live_battle(judge, "text", "four")
    assert refused.value.message == "you have sent 3 prompts in the last hour; the limit is 3. Try again later."
    assert LiveGeneration.objects.filter(user_message="four").count() == 0


def test_a_prompt_that_finds_no_pair_costs_nothing(db, judge, live_systems, settings):
    settings.LIVE_PROMPTS_PER_HOUR = 1
    System.objects.update(is_active=False)
    with pytest.raises(errors.NothingToCompare):
        live.start_live_battle(judge, "text", "nobody home")
    System.objects.update(is_active=True)
    live.start_live_battle(judge, "text", "one")  # the budget's one prompt is still there


def test_per_system_concurrency_limit(db, judge, live_systems, settings):
    settings.LIVE_MAX_CONCURRENT_PER_SYSTEM = 1
    first = live.start_live_battle(judge, "text", "one", rng=random.Random(0))
    second = live.start_live_battle(judge, "text", "two", rng=random.Random(0))
    a1 = LiveGeneration.objects.get(battle=first, side="a")
    a2 = LiveGeneration.objects.get(battle=second, system=a1.system)
    LiveGeneration.objects.filter(pk=a1.pk).update(status=GenerationStatus.RUNNING)
    assert live.run_live_generation(a2.pk) == "wait"
    assert live.queue_position(LiveGeneration.objects.get(pk=a2.pk)) == 1
    LiveGeneration.objects.filter(pk=a1.pk).update(status=GenerationStatus.DONE)
    assert live.run_live_generation(a2.pk) == GenerationStatus.DONE


def test_follow_up_needs_complete_answers(db, judge, live_systems):
    battle = live.start_live_battle(judge, "text", "first")
    with pytest.raises(errors.InvalidInput, match="once both answers are complete"):
        live.send_follow_up(battle, "second")
    with pytest.raises(errors.InvalidInput, match="voting opens once both systems have answered"):
        live.vote_live(battle, "a")


def test_image_battle_renders_media(db, judge):
    for style in ("circles", "stripes"):
        System.objects.create(name=f"p-{style}", provider="demo_image", modality="image", provider_config={"style": style})
    battle = live.start_live_battle(judge, "image", "A red boat")
    run_turn(battle)
    state = live.battle_state(battle)
    assert state["turns"][0]["a"]["kind"] == "image" and state["turns"][0]["a"]["url"].endswith(".png")
    assert not state["can_follow_up"]
    body, _ = live.vote_live(battle, "tie")
    assert body["reveal"]["a"]["demo"] is True


# --- over HTTP ------------------------------------------------------------------------------


def test_the_api_refuses_the_prompt_over_the_budget_with_retry_after(db, annotator, client_for, live_systems,
                                                                     settings):  # fmt: skip
    # given a budget of 2 prompts an hour
    settings.LIVE_PROMPTS_PER_HOUR = 2
    api = client_for(annotator)
    for message in ("one", "two"):
        assert api.post("/api/live/battles/", {"message": message}, format="json").status_code == 201
    # when the third prompt of the hour comes in
    refused = api.post("/api/live/battles/", {"message": "three"}, format="json")
    # then it is a 429 naming the limit, with the seconds left in the hour's window
    assert refused.status_code == 429, refused.content
    assert refused.json() == {"error": "rate_limited",
                              "detail": "you have sent 2 prompts in the last hour; the limit is 2. Try again later."}
    assert 1 <= int(refused["Retry-After"]) <= 3600


def test_live_api_and_event_stream(db, annotator, make_user, client_for, live_systems, client):
    api = client_for(annotator)
    response = api.post("/api/live/battles/", {"modality": "text", "message": "Hi there"}, format="json")
    assert response.status_code == 201, response.content
    battle_id = response.json()["battle"]
    assert "tiny-" not in response.content.decode()

    # another voter cannot see or vote on it
    other = client_for(make_user("other"))
    assert other.get(f"/api/live/battles/{battle_id}/").status_code == 403

    from arena.models import LiveBattle

    run_turn(LiveBattle.objects.get(public_id=battle_id))
    client.force_login(annotator)
    stream = client.get(f"/api/live/battles/{battle_id}/events/")
    assert stream["Content-Type"] == "text/event-stream"
    body = b"".join(stream.streaming_content).decode()
    assert body.startswith("event: state\ndata: ") and "event: end" in body
    state = json.loads(body.split("data: ", 1)[1].split("\n", 1)[0])
    assert state["status"] == "ready" and state["turns"][0]["a"]["status"] == "done"

    bad = api.post(f"/api/live/battles/{battle_id}/vote/", {"verdict": "maybe"}, format="json")
    assert bad.status_code == 400 and "verdict must be one of" in bad.json()["detail"]
    voted = api.post(f"/api/live/battles/{battle_id}/vote/", {"verdict": "a"}, format="json")
    assert voted.status_code == 201 and voted.json()["reveal"]["a"]["system"].startswith("tiny-")


def test_live_api_refuses_empty_and_anonymous(db, annotator, client_for, live_systems):
    assert client_for().post("/api/live/battles/", {"message": "hi"}, format="json").status_code == 401
    empty = client_for(annotator).post("/api/live/battles/", {"message": "  "}, format="json")
    assert empty.status_code == 400 and "message is empty" in empty.json()["detail"]

import json

import pytest
from django.core import signing
from django.urls import reverse

from arena.models import Judgment
from arena.voting.actions import VOTE_TOKEN_SALT

NEXT = "/api/arena/next/"
VOTE = "/api/arena/vote/"


def next_comparison(client, modality="text"):
    response = client.get(NEXT, {"modality": modality})
    assert response.status_code == 200, response.content
    return response.json()


def test_next_comparison_hides_identities(arena_factory, annotator, client_for):
    # given
    systems, _ = arena_factory("text", n_systems=3, n_prompts=2)
    client = client_for(annotator)
    # when
    payload = next_comparison(client)
    # then nothing sent before the vote names a system
    raw = json.dumps(payload)
    for system in systems:
        assert system.name not in raw
    assert set(payload) >= {"comparison", "token", "prompt", "a", "b", "modality"}
    assert payload["a"]["kind"] == "text" and "<strong>bold</strong>" in payload["a"]["html"]
    assert "system" not in payload["a"] and "metadata" not in payload["a"]


def test_vote_records_one_judgment_and_reveals(arena_factory, annotator, client_for):
    systems, _ = arena_factory("text")
    client = client_for(annotator)
    payload = next_comparison(client)

    response = client.post(
        VOTE, {"token": payload["token"], "verdict": "a", "time_to_vote_ms": 1234}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["duplicate"] is False and body["verdict"] == "a"
    names = {system.name for system in systems}
    assert body["reveal"]["a"]["system"] in names and body["reveal"]["b"]["system"] in names
    assert body["reveal"]["a"]["system"] != body["reveal"]["b"]["system"]
    judgment = Judgment.objects.get()
    assert judgment.judge.user == annotator
    assert judgment.time_to_vote_ms == 1234
    assert str(judgment.comparison.public_id) == payload["comparison"]
    assert judgment.comparison.output_a.system.name == body["reveal"]["a"]["system"]


def test_same_vote_twice_returns_first_judgment(arena_factory, annotator, client_for):
    arena_factory("text")
    client = client_for(annotator)
    payload = next_comparison(client)
    first = client.post(VOTE, {"token": payload["token"], "verdict": "a"}, format="json")
    second = client.post(VOTE, {"token": payload["token"], "verdict": "b"}, format="json")
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["duplicate"] is True
    assert second.json()["judgment"] == first.json()["judgment"]
    assert second.json()["verdict"] == "a"
    assert Judgment.objects.count() == 1


@pytest.mark.parametrize(
    "body, status, code, fragment",
    [
        ({"verdict": "a"}, 400, "invalid_token", "token is required"),
        ({"token": "garbage", "verdict": "a"}, 400, "invalid_token", "bad signature"),
        ({"token": "VALID", "verdict": "maybe"}, 400, "invalid", "verdict must be one of a, b, tie, both_bad"),
        ({"token": "VALID"}, 400, "invalid", "verdict must be one of"),
    ],
)
def test_bad_votes_get_clear_errors(arena_factory, annotator, client_for, body, status, code, fragment):
    arena_factory("text")
    client = client_for(annotator)
    payload = next_comparison(client)
    if body.get("token") == "VALID":
        body = {**body, "token": payload["token"]}
    response = client.post(VOTE, body, format="json")
    assert response.status_code == status
    assert response.json()["error"] == code
    assert fragment in response.json()["detail"]
    assert Judgment.objects.count() == 0


def test_foreign_token_is_refused(arena_factory, annotator, make_user, client_for):
    arena_factory("text")
    payload = next_comparison(client_for(annotator))
    other = client_for(make_user("other", "annotator"))
    response = other.post(VOTE, {"token": payload["token"], "verdict": "a"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == "foreign_token"
    assert Judgment.objects.count() == 0


def test_expired_token_is_refused(arena_factory, annotator, client_for, settings):
    arena_factory("text")
    client = client_for(annotator)
    payload = next_comparison(client)
    settings.VOTE_TOKEN_MAX_AGE_SECONDS = -1
    response = client.post(VOTE, {"token": payload["token"], "verdict": "a"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "expired_token"
    assert "expired" in response.json()["detail"]


def test_token_for_missing_comparison_is_404(arena_factory, annotator, client_for):
    arena_factory("text")
    client = client_for(annotator)
    judge_id = signing.loads(next_comparison(client)["token"], salt=VOTE_TOKEN_SALT)["j"]
    token = signing.dumps({"c": "0" * 32, "j": judge_id}, salt=VOTE_TOKEN_SALT)
    response = client.post(VOTE, {"token": token, "verdict": "a"}, format="json")
    assert response.status_code == 404
    assert "does not exist" in response.json()["detail"]


def test_anonymous_cannot_vote_unless_open_arena(arena_factory, client_for, settings):
    arena_factory("text")
    client = client_for()
    closed = client.get(NEXT)
    assert closed.status_code == 401
    assert "log in" in closed.json()["detail"]

    settings.OPEN_ARENA = True
    payload = next_comparison(client)
    response = client.post(VOTE, {"token": payload["token"], "verdict": "tie"}, format="json")
    assert response.status_code == 201
    judgment = Judgment.objects.get()
    assert judgment.judge.kind == "anonymous" and judgment.judge.user is None


def test_account_without_role_cannot_vote(arena_factory, make_user, client_for):
    arena_factory("text")
    client = client_for(make_user("nobody", role=None))
    response = client.get(NEXT)
    assert response.status_code == 403
    assert "annotator role" in response.json()["detail"]


def test_unknown_modality_is_400(arena_factory, annotator, client_for):
    arena_factory("text")
    response = client_for(annotator).get(NEXT, {"modality": "smell"})
    assert response.status_code == 400
    assert "unknown modality 'smell'" in response.json()["detail"]


def test_audio_vote_needs_both_tracks_played(arena_factory, annotator, client_for, settings):
    settings.AUDIO_MIN_PLAY_SECONDS = 5.0
    arena_factory("audio", audio_seconds=8.0)
    client = client_for(annotator)
    payload = next_comparison(client, "audio")
    assert payload["audio_min_play_seconds"] == 5.0
    assert payload["a"]["kind"] == "audio" and payload["a"]["url"].endswith(".wav")

    only_a = [
        {"side": "a", "type": "play", "position": 0, "t": 10},
        {"side": "a", "type": "pause", "position": 6.0, "t": 6100},
        {"side": "b", "type": "play", "position": 0, "t": 6200},
        {"side": "b", "type": "pause", "position": 2.0, "t": 8200},
    ]
    refused = client.post(VOTE, {"token": payload["token"], "verdict": "a", "play_events": only_a}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"] == "audio_not_played"
    assert "track B played 2.0 s of the required 5.0 s" in refused.json()["detail"]

    both = only_a + [
        {"side": "b", "type": "play", "position": 2.0, "t": 9000},
        {"side": "b", "type": "ended", "position": 8.0, "t": 15000},
    ]
    accepted = client.post(VOTE, {"token": payload["token"], "verdict": "b", "play_events": both}, format="json")
    assert accepted.status_code == 201
    stored = Judgment.objects.get().play_events
    assert len(stored) == 6 and stored[-1] == {"side": "b", "type": "ended", "position": 8.0, "t": 15000.0}


def test_short_audio_only_needs_to_play_to_its_end(arena_factory, annotator, client_for, settings):
    settings.AUDIO_MIN_PLAY_SECONDS = 5.0
    arena_factory("audio", audio_seconds=1.0)
    client = client_for(annotator)
    payload = next_comparison(client, "audio")
    events = [
        {"side": side, "type": kind, "position": position, "t": t}
        for side, offset in (("a", 0), ("b", 2000))
        for kind, position, t in (("play", 0, offset), ("ended", 1.0, offset + 1000))
    ]
    response = client.post(VOTE, {"token": payload["token"], "verdict": "a", "play_events": events}, format="json")
    assert response.status_code == 201, response.content


def test_malformed_play_events_are_400(arena_factory, annotator, client_for):
    arena_factory("audio")
    client = client_for(annotator)
    payload = next_comparison(client, "audio")
    response = client.post(
        VOTE, {"token": payload["token"], "verdict": "a", "play_events": [{"side": "c", "type": "play"}]}, format="json"
    )
    assert response.status_code == 400
    assert "side" in json.dumps(response.json())


def test_arena_page_requires_login_unless_open(db, client, settings):
    response = client.get(reverse("arena:arena"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    settings.OPEN_ARENA = True
    response = client.get(reverse("arena:arena"))
    assert response.status_code == 200
    assert b'data-vote-url="/api/arena/vote/"' in response.content


def test_pages_carry_a_strict_content_security_policy(db, client):
    response = client.get(reverse("login"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy
    assert b"cdn" not in response.content.lower()


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_votes_count_once(arena_factory, annotator):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection
    from rest_framework.test import APIClient

    arena_factory("text")
    client = APIClient()
    client.force_authenticate(annotator)
    payload = next_comparison(client)

    def post(_):
        thread_client = APIClient()
        thread_client.force_authenticate(annotator)
        try:
            return thread_client.post(VOTE, {"token": payload["token"], "verdict": "b"}, format="json").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(post, range(12)))
    assert statuses.count(201) == 1
    assert statuses.count(200) == 11
    assert Judgment.objects.count() == 1


# --- a vote that also serves the next comparison (?next=1, what the arena page does) -------------


def test_vote_with_next_serves_the_following_comparison(arena_factory, annotator, client_for):
    # given a voter served a comparison
    systems, _ = arena_factory("text", n_systems=3, n_prompts=2)
    client = client_for(annotator)
    first = next_comparison(client)
    # when they vote asking for the next one
    response = client.post(VOTE + "?next=1", {"token": first["token"], "verdict": "a"}, format="json")
    # then the vote is recorded and revealed, and a different comparison comes with it,
    # as anonymous as GET next's
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["duplicate"] is False and Judgment.objects.count() == 1
    assert set(body["reveal"]) == {"a", "b"}
    following = body["next"]
    assert following["comparison"] != first["comparison"] and "next_error" not in body
    assert set(following) >= {"comparison", "token", "prompt", "a", "b", "modality"}
    assert following["modality"] == "text" and following["a"]["kind"] == "text"
    assert not any(system.name in json.dumps(following) for system in systems)
    # and it was served: reloading gives the same one, and its token records a vote
    assert next_comparison(client)["comparison"] == following["comparison"]
    second = client.post(VOTE + "?next=1", {"token": following["token"], "verdict": "b"}, format="json")
    assert second.status_code == 201, second.content
    judged = {str(j.comparison.public_id): j.verdict for j in Judgment.objects.select_related("comparison")}
    assert judged == {first["comparison"]: "a", following["comparison"]: "b"}


def test_vote_without_next_has_no_next(arena_factory, annotator, client_for):
    arena_factory("text")
    client = client_for(annotator)
    body = client.post(VOTE, {"token": next_comparison(client)["token"], "verdict": "tie"}, format="json").json()
    assert "next" not in body and "next_error" not in body


def test_vote_with_next_when_nothing_is_left_keeps_the_vote_and_says_why(arena_factory, annotator, client_for):
    # given an arena with a single pair
    arena_factory("text", n_systems=2, n_prompts=1)
    client = client_for(annotator)
    served = next_comparison(client)
    # when the voter judges it asking for the next one
    response = client.post(VOTE + "?next=true", {"token": served["token"], "verdict": "b"}, format="json")
    # then the vote stands and the body says why there is no next comparison
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["next"] is None
    assert body["next_error"]["error"] == "nothing_to_compare"
    assert "judged every available pair" in body["next_error"]["detail"]
    assert Judgment.objects.get().verdict == "b"


def test_a_repeated_vote_with_next_still_counts_once(arena_factory, annotator, client_for):
    arena_factory("text", n_systems=3, n_prompts=2)
    client = client_for(annotator)
    served = next_comparison(client)
    first = client.post(VOTE + "?next=1", {"token": served["token"], "verdict": "a"}, format="json").json()
    again = client.post(VOTE + "?next=1", {"token": served["token"], "verdict": "b"}, format="json")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    # the comparison served with the first answer is still the pending one
    assert again.json()["next"]["comparison"] == first["next"]["comparison"]
    assert Judgment.objects.count() == 1

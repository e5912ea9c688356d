"""Ballot stuffing: rate limits per account, session and client address (429 with a time
to retry, counted across processes), and a voter cannot pick the comparison they get."""

import math
import subprocess
import sys
import time

import pytest

from arena import ratelimit
from arena.models import Comparison, Judgment

from .conftest import ROOT

NEXT = "/api/arena/next/"
VOTE = "/api/arena/vote/"
NOW = 1_800_000_000.0 + 10  # ten seconds into a minute (and an hour, and a day)


@pytest.fixture
def clock(monkeypatch):
    """The limiter's clock, so a test never straddles a window edge by accident."""
    state = {"now": NOW}
    monkeypatch.setattr(ratelimit.time, "time", lambda: state["now"])
    return state


def cast_vote(client, verdict="a", **extra):
    served = client.get(NEXT, **extra)
    assert served.status_code == 200, served.content
    return client.post(VOTE, {"token": served.json()["token"], "verdict": verdict}, format="json", **extra)


def assert_refused(response, fragment):
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["error"] == "rate_limited"
    assert fragment in body["detail"] and "Try again in" in body["detail"]
    assert 1 <= int(response["Retry-After"]) <= 60


def test_votes_per_account_are_limited_and_recover_next_window(arena_factory, annotator, client_for, settings, clock):
    # given a limit of 3 votes a minute and enough pairs to vote on
    settings.VOTE_RATE_LIMIT = "3/minute"
    arena_factory("text", n_systems=4, n_prompts=3)
    client = client_for(annotator)
    for _ in range(3):
        assert cast_vote(client).status_code == 201
    # when the fourth vote comes in the same minute
    served = client.get(NEXT)
    refused = client.post(VOTE, {"token": served.json()["token"], "verdict": "a"}, format="json")
    # then it is refused with the seconds to wait (50: the clock is 10 s into the minute)
    assert_refused(refused, "Too many votes from this account: the limit is 3 per minute")
    assert refused["Retry-After"] == "50"
    assert Judgment.objects.count() == 3
    # and the same vote goes through once the window has passed
    clock["now"] += 50
    retried = client.post(VOTE, {"token": served.json()["token"], "verdict": "a"}, format="json")
    assert retried.status_code == 201
    assert Judgment.objects.count() == 4


def test_next_comparison_is_limited_per_account(arena_factory, annotator, make_user, client_for, settings, clock):
    settings.NEXT_RATE_LIMIT = "2/minute"
    arena_factory("text")
    client = client_for(annotator)
    assert client.get(NEXT).status_code == 200
    assert client.get(NEXT).status_code == 200
    assert_refused(client.get(NEXT), "Too many requests for a comparison from this account")
    # another account on the same address is not affected by this account's limit
    assert client_for(make_user("other")).get(NEXT).status_code == 200


def test_client_address_limit_spans_accounts(arena_factory, make_user, client_for, settings, clock):
    # given a limit of 4 arena requests a minute per address
    settings.CLIENT_RATE_LIMIT = "4/minute"
    arena_factory("text", n_systems=3, n_prompts=3)
    alice, bob = client_for(make_user("alice")), client_for(make_user("bob"))
    # when two accounts vote from one address (2 requests per vote)
    assert cast_vote(alice, REMOTE_ADDR="203.0.113.7").status_code == 201
    assert cast_vote(bob, REMOTE_ADDR="203.0.113.7").status_code == 201
    # then the address's budget is spent for both, but not for another address
    assert_refused(bob.get(NEXT, REMOTE_ADDR="203.0.113.7"), "from your network address")
    assert alice.get(NEXT, REMOTE_ADDR="198.51.100.1").status_code == 200


def test_anonymous_sessions_are_limited_and_dropping_cookies_does_not_help(arena_factory, settings, clock):
    from rest_framework.test import APIClient

    settings.OPEN_ARENA = True
    settings.VOTE_RATE_LIMIT = "1/minute"
    settings.CLIENT_RATE_LIMIT = "6/minute"
    arena_factory("text", n_systems=3, n_prompts=2)
    browser = APIClient()
    # the session votes once, then its second vote is refused
    assert cast_vote(browser).status_code == 201
    served = browser.get(NEXT)
    assert_refused(browser.post(VOTE, {"token": served.json()["token"], "verdict": "b"}, format="json"),
                   "from this browser session")  # fmt: skip
    # a script that starts a new session for every vote gets one more vote (requests 5
    # and 6 of the address's 6), then meets the per-address limit
    assert cast_vote(APIClient()).status_code == 201
    assert_refused(APIClient().get(NEXT), "from your network address")
    assert Judgment.objects.count() == 2


def test_forwarded_for_is_ignored_unless_a_proxy_is_trusted(rf, settings):
    request = rf.get(NEXT, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9")
    settings.TRUSTED_PROXY_HOPS = 0
    assert ratelimit.client_address(request) == "10.0.0.2"
    settings.TRUSTED_PROXY_HOPS = 1  # one proxy: the entry it appended, not the client's own claim
    assert ratelimit.client_address(request) == "203.0.113.9"
    settings.TRUSTED_PROXY_HOPS = 3  # fewer entries than proxies: someone skipped a proxy
    assert ratelimit.client_address(request) == "10.0.0.2"


def test_ipv6_addresses_count_by_64_block(rf, settings):
    settings.TRUSTED_PROXY_HOPS = 0
    one = ratelimit.client_address(rf.get(NEXT, REMOTE_ADDR="2001:db8:1:2::1"))
    two = ratelimit.client_address(rf.get(NEXT, REMOTE_ADDR="2001:db8:1:2:ffff::9"))
    other = ratelimit.client_address(rf.get(NEXT, REMOTE_ADDR="2001:db8:1:3::1"))
    mapped = ratelimit.client_address(rf.get(NEXT, REMOTE_ADDR="::ffff:192.0.2.1"))
    assert one == two == "2001:db8:1:2::/64" and other != one
    assert mapped == "192.0.2.1"


def test_counter_store_never_holds_addresses_or_session_keys(arena_factory, settings, clock):
    from rest_framework.test import APIClient

    from arena.sharedstate import RateCount

    settings.OPEN_ARENA = True
    settings.VOTE_RATE_LIMIT, settings.CLIENT_RATE_LIMIT = "10/minute", "10/minute"
    arena_factory("text")
    client = APIClient()
    cast_vote(client, REMOTE_ADDR="203.0.113.77")
    keys = list(RateCount.objects.values_list("key", flat=True))
    assert keys and not any("203.0.113.77" in key for key in keys)
    assert not any(client.session.session_key in key for key in keys)


def test_a_broken_counter_store_never_costs_a_vote(arena_factory, annotator, client_for, settings, monkeypatch):
    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(ratelimit.DatabaseStore, "hit_many", broken)
    arena_factory("text")
    assert cast_vote(client_for(annotator)).status_code == 201
    assert Judgment.objects.count() == 1


def test_rate_setting_is_checked_at_startup():
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"], cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "DUET_VOTE_RATE_LIMIT": "lots"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "DUET_VOTE_RATE_LIMIT must be N/second, N/minute, N/hour, N/day or off" in result.stderr
    assert ratelimit.Rate.parse("120/minute") == ratelimit.Rate(120, 60, "minute")
    assert ratelimit.Rate.parse("off") is None


COUNT_SCRIPT = """
import sys
import django
django.setup()
from arena.ratelimit import DatabaseStore
store = DatabaseStore()
last = 0
for _ in range(int(sys.argv[1])):
    last = store.hit("shared", 7, 1e12)
print(last)
"""


@pytest.mark.django_db(transaction=True)
def test_database_store_counts_exactly_across_processes(tmp_path):
    # given four processes hitting one key at once (as four gunicorn workers would)
    from tests.processes import process_env

    hits, env = 300, process_env(tmp_path)
    runs = [
        subprocess.Popen([sys.executable, "-c", COUNT_SCRIPT, str(hits)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]  # fmt: skip
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs)
    # then no increment is lost: the store holds every hit, and the last one to finish saw them all
    assert ratelimit.DatabaseStore().hit("shared", 7, 1e12) == 4 * hits + 1
    assert max(int(out) for out in outputs) == 4 * hits


def test_a_new_window_starts_from_one(db):
    store = ratelimit.DatabaseStore()
    later = time.time() + 120  # not yet expired, so a prune cannot remove the row
    assert [store.hit("k", 1, later) for _ in range(3)] == [1, 2, 3]
    assert store.hit("k", 2, later + 60) == 1
    assert store.hit_many([("k", 2, later + 60), ("j", 2, later + 60)]) == [2, 1]


@pytest.mark.redis
def test_redis_store_counts_and_expires(redis_server):
    import redis

    url, _, _ = redis_server
    store = ratelimit.RedisStore(redis.Redis.from_url(url))
    assert [store.hit("k", 1, 1e10) for _ in range(3)] == [1, 2, 3]
    assert store.hit("k", 2, 1e10) == 1
    assert 0 < store.client.ttl("duet:ratelimit:k:1")


@pytest.mark.redis
def test_limits_apply_through_redis_store(arena_factory, annotator, client_for, settings, clock, redis_server):
    url, _, _ = redis_server
    settings.REDIS_URL = url
    settings.NEXT_RATE_LIMIT = "1/minute"
    arena_factory("text")
    client = client_for(annotator)
    assert client.get(NEXT).status_code == 200
    assert_refused(client.get(NEXT), "from this account")


# --- a voter cannot choose the comparison they get -----------------------------------------


def test_reloading_serves_the_same_comparison_until_it_is_voted(arena_factory, annotator, client_for):
    # given an arena with many possible pairs
    arena_factory("text", n_systems=5, n_prompts=4)
    client = client_for(annotator)
    first = client.get(NEXT).json()
    # when the voter asks again and again (hoping for a pair they like)
    again = [client.get(NEXT).json() for _ in range(10)]
    # then they get the same comparison each time, and nothing new is created
    assert {payload["comparison"] for payload in again} == {first["comparison"]}
    assert {payload["a"]["html"] for payload in again} == {first["a"]["html"]}
    assert Comparison.objects.count() == 1
    # switching modality and back does not re-roll it either
    client.get(NEXT, {"modality": "image"})
    assert client.get(NEXT).json()["comparison"] == first["comparison"]
    # only a vote moves the voter on
    client.post(VOTE, {"token": first["token"], "verdict": "tie"}, format="json")
    assert client.get(NEXT).json()["comparison"] != first["comparison"]


def test_a_vote_token_cannot_be_pointed_at_another_comparison(arena_factory, annotator, make_user, client_for):
    from django.core import signing

    arena_factory("text", n_systems=3, n_prompts=2)
    mine = client_for(annotator).get(NEXT).json()
    theirs = client_for(make_user("other")).get(NEXT).json()
    # splice the other comparison's id into my token without the server's key
    payload = signing.loads(mine["token"], salt="duet.arena.vote")
    forged = signing.dumps({**payload, "c": theirs["comparison"].replace("-", "")}, key="guess", salt="duet.arena.vote")
    response = client_for(annotator).post(VOTE, {"token": forged, "verdict": "a"}, format="json")
    assert response.status_code == 400 and response.json()["error"] == "invalid_token"
    assert Judgment.objects.count() == 0


def test_a_vote_asking_for_the_next_comparison_counts_against_both_limits(
    arena_factory, annotator, client_for, settings, clock
):
    # given limits of 2 comparisons and 5 votes a minute
    settings.NEXT_RATE_LIMIT, settings.VOTE_RATE_LIMIT = "2/minute", "5/minute"
    arena_factory("text", n_systems=4, n_prompts=3)
    client = client_for(annotator)
    served = client.get(NEXT).json()
    # when votes ask for the next comparison each time
    chained = client.post(VOTE + "?next=1", {"token": served["token"], "verdict": "a"}, format="json")
    assert chained.status_code == 201, chained.content
    refused = client.post(VOTE + "?next=1", {"token": chained.json()["next"]["token"], "verdict": "a"}, format="json")
    # then the third comparison of the minute is refused, and with it that vote: nothing
    # half done (the second vote is not stored without its answer)
    assert_refused(refused, "Too many requests for a comparison from this account: the limit is 2 per minute")
    assert Judgment.objects.count() == 1
    # and the same vote without asking for more goes through: the vote limit is not spent
    assert client.post(VOTE, {"token": chained.json()["next"]["token"], "verdict": "a"}, format="json").status_code == 201
    assert Judgment.objects.count() == 2


@pytest.mark.redis
def test_redis_store_counts_many_subjects_in_one_call_and_each_key_expires_with_its_window(redis_server):
    import redis

    url, _, _ = redis_server
    client = redis.Redis.from_url(url)
    store = ratelimit.RedisStore(client)
    now = time.time()
    hits = [("vote:user:1:60", 7, now + 30), ("client:abc:60", 7, now + 90)]
    assert store.hit_many(hits) == [1, 1]
    assert store.hit_many(hits) == [2, 2]
    assert store.hit_many([("client:abc:60", 7, now + 90)]) == [3]
    assert store.hit_many([("client:abc:60", 8, now + 150)]) == [1]  # the next window starts at 1
    expiry = client.expiretime("duet:ratelimit:vote:user:1:60:7")
    assert expiry == math.ceil(now + 30) + 1  # set by the hit that made the key, kept by later hits
    client.script_flush()  # a restarted Redis forgets scripts: the store loads it again
    assert store.hit_many(hits) == [3, 4]

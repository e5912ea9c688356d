"""Change stamps (arena.hotcache): a change made by any Django process, on any host, clears
every process's copies once it commits (the stamps live in the database, or in Redis),
and with the stamps unreadable the lifetime (DUET_ARENA_CACHE_SECONDS) still bounds how
long a copy is trusted."""

import logging
import subprocess
import time
import sys
import uuid
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from arena import hotcache
from arena.api.authentication import CachedTokenAuthentication
from arena.board import outliers
from arena.models import Judge, Output, System
from arena.voting import matchmaking
from arena.voting import presenters
from tests.arena.test_vote_path import api_token, clock  # noqa: F401 - fixtures
from tests.processes import ROOT, process_env
from tests.reliability.conftest import redis_server  # noqa: F401 - fixture

# Deletes a token from a process that never runs arena.api.authentication, the module
# defining the token memo (a stand-in takes its place: in Duet today every process
# happens to import it while loading the apps, through DRF's settings): the change must
# be reported all the same.
DELETE_TOKEN = """
import sys, types
stand_in = types.ModuleType("arena.api.authentication")
stand_in.CachedTokenAuthentication = object
sys.modules["arena.api.authentication"] = stand_in
import django
django.setup()
from arena import hotcache
from rest_framework.authtoken.models import Token
assert not any("authtoken.Token" in memo.invalidated_by for memo in hotcache._memos)
deleted, _ = Token.objects.filter(key=%(key)r).delete()
print("DELETED", deleted)
"""


def delete_token_in_another_process(key: str, tmp_path, **env) -> str:
    env = process_env(tmp_path, **env)
    result = subprocess.run([sys.executable, "-c", DELETE_TOKEN % {"key": key}], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def cached_token(transactional_db, settings):
    """A committed token this process has authenticated once, its copy trusted for an hour."""
    settings.ARENA_CACHE_SECONDS = 3600
    user = get_user_model().objects.create_user(username=f"voter-{uuid.uuid4().hex[:8]}", password="x")
    token = Token.objects.create(user=user)
    auth = CachedTokenAuthentication()
    assert auth.authenticate_credentials(token.key)[0].pk == user.pk
    return SimpleNamespace(auth=auth, key=token.key, user=user)


def refused_after(cached_token, timeout: float = 2.0) -> float:
    """Seconds until this process refuses the token (fails past `timeout`)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            cached_token.auth.authenticate_credentials(cached_token.key)
        except AuthenticationFailed:
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"the deleted token still worked after {timeout} s")


@pytest.mark.django_db(transaction=True)
def test_a_token_deleted_by_another_process_is_refused_within_the_check_interval(cached_token, tmp_path):
    # given a token this process holds a copy of, and reads the stamps every 0.25 s
    stamp_before = hotcache.stamp("authtoken.Token:edited")
    # when another process, which has no token memo, deletes it
    out = delete_token_in_another_process(cached_token.key, tmp_path)
    assert "DELETED 1" in out, out
    # then its commit bumped the token's stamp in the database, and this process refuses
    # the token within the interval
    assert hotcache.stamp("authtoken.Token:edited") == stamp_before + 1
    assert refused_after(cached_token) < 0.25 + 0.2


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_with_redis_a_token_deleted_elsewhere_is_refused_within_the_check_interval(
    cached_token, settings, tmp_path, redis_server  # noqa: F811
):
    # given both processes keep the stamps in Redis
    url, _, _ = redis_server
    settings.REDIS_URL = url
    cached_token.auth.authenticate_credentials(cached_token.key)
    # when the other process deletes the token
    delete_token_in_another_process(cached_token.key, tmp_path, DUET_REDIS_URL=url)
    # then the bump is in Redis, none in the database, and the token is refused
    assert hotcache.RedisStamps.KEY.encode() in hotcache.stamps_store().client.keys()
    assert refused_after(cached_token) < 0.25 + 0.2


@pytest.mark.django_db(transaction=True)
def test_with_the_stamps_unreadable_a_token_deleted_elsewhere_works_until_the_ttl(
    clock, cached_token, settings, tmp_path, caplog
):
    # given this process cannot read the stamps (Redis away)
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    caplog.set_level(logging.WARNING, logger="arena.hotcache")
    assert cached_token.auth.authenticate_credentials(cached_token.key)[0].pk == cached_token.user.pk
    # when another process deletes the token
    delete_token_in_another_process(cached_token.key, tmp_path)
    # then this process trusts its copy for the lifetime, and warned once
    clock.now += 3599
    assert cached_token.auth.authenticate_credentials(cached_token.key)[0].pk == cached_token.user.pk
    assert cached_token.auth.authenticate_credentials(cached_token.key)[0].pk == cached_token.user.pk
    assert hotcache.stamp("authtoken.Token") is None
    warnings = [r for r in caplog.records if "cannot read the change stamps" in r.getMessage()]
    assert len(warnings) == 1
    # and refuses it once the lifetime is over
    clock.now += 1
    with pytest.raises(AuthenticationFailed):
        cached_token.auth.authenticate_credentials(cached_token.key)


@pytest.mark.django_db(transaction=True)
def test_a_change_bumps_its_stamp_at_commit_and_a_rolled_back_one_never(settings):
    # given a memo fed by systems, holding a copy (the stamps read on every memo read)
    settings.ARENA_CACHE_SECONDS = 3600
    settings.ARENA_CACHE_CHECK_SECONDS = 0
    memo = hotcache.Memo(f"test memo {uuid.uuid4().hex}", invalidated_by=("arena.System",))
    try:
        calls = []
        compute = lambda: calls.append(1) or len(calls)  # noqa: E731
        before = hotcache.stamp("arena.System")
        assert memo.get("k", compute) == 1
        # when a system is saved inside a transaction
        with transaction.atomic():
            System.objects.create(name="stamped", modality="text")
            # then this process's copy is gone at once, but other processes are not told yet
            assert memo.get("k", compute) == 2
            assert hotcache.stamp("arena.System") == before
        # and are told at the commit
        assert hotcache.stamp("arena.System") == before + 1
        assert memo.get("k", compute) == 3  # the bump reaches this process too: harmless
        assert memo.get("k", compute) == 3
        # when a change is rolled back, then no process is told
        with pytest.raises(RuntimeError), transaction.atomic():
            System.objects.create(name="never", modality="text")
            raise RuntimeError("rolled back")
        assert hotcache.stamp("arena.System") == before + 1
    finally:
        hotcache._memos.remove(memo)


def test_a_bump_clears_only_the_memos_of_that_model(api_token, settings, django_assert_num_queries):
    # given a cached token (its memo is fed by tokens, users, groups, permissions), and
    # the stamps read on every memo read
    settings.ARENA_CACHE_SECONDS = 3600
    settings.ARENA_CACHE_CHECK_SECONDS = 0
    assert "arena.Output" not in _token_labels()  # else this test shows nothing
    auth = CachedTokenAuthentication()
    auth.authenticate_credentials(api_token.key)
    # when another process reports a changed output, then the token's copy stays (the
    # stamps are read on the side: no query of the request's)
    hotcache.bump("arena.Output")
    with django_assert_num_queries(0):
        auth.authenticate_credentials(api_token.key)
    # nor a new token (a refused token is never kept, so a new one changes no copy)
    hotcache.bump("authtoken.Token")
    with django_assert_num_queries(0):
        auth.authenticate_credentials(api_token.key)
    # when it reports a changed or deleted token, then the copy is read again
    hotcache.bump("authtoken.Token:edited")
    with django_assert_num_queries(3):  # the token with its user, their own permissions, their roles' ones
        auth.authenticate_credentials(api_token.key)


def test_between_checks_a_memo_reads_no_stamps(api_token, settings, monkeypatch):
    # given a token read once, with the stamps just read
    settings.ARENA_CACHE_SECONDS = 3600
    auth = CachedTokenAuthentication()
    auth.authenticate_credentials(api_token.key)
    reads = []
    monkeypatch.setattr(hotcache.DatabaseStamps, "read", lambda self: reads.append(1) or {})
    # when it is read many times within the interval, then the stamps are not read again
    for _ in range(100):
        auth.authenticate_credentials(api_token.key)
    assert reads == []


def _token_labels() -> tuple[str, ...]:
    from arena.api.authentication import _tokens

    return _tokens.invalidated_by


def test_flags_set_with_update_are_reported_at_commit(db, django_capture_on_commit_callbacks):
    # given a voter (.update() sets the flag: no signal)
    judge = Judge.objects.create(kind="human", name="flagged-voter")
    before = hotcache.stamp("arena.Judge")
    # when they are flagged, then every process is told once it commits
    with django_capture_on_commit_callbacks(execute=True):
        outliers.flag_judges(Judge.objects.filter(pk=judge.pk), reason="stuffing", by="test")
        assert hotcache.stamp("arena.Judge") == before
    assert hotcache.stamp("arena.Judge") == before + 1


BUMP_SCRIPT = """
import sys
import django
django.setup()
from arena import hotcache
for _ in range(int(sys.argv[1])):
    hotcache.bump("arena.Arena", "arena.Arena:edited")
"""


@pytest.mark.django_db(transaction=True)
def test_bumps_from_several_processes_at_once_are_all_counted(tmp_path):
    # given three processes and this one bumping the same stamps at once
    per_process, start = 150, hotcache.stamp("arena.Arena")
    env = process_env(tmp_path)
    children = [subprocess.Popen([sys.executable, "-c", BUMP_SCRIPT, str(per_process)], cwd=ROOT, env=env)
                for _ in range(3)]  # fmt: skip
    for _ in range(per_process):
        hotcache.bump("arena.Arena", "arena.Arena:edited")
    # then none is lost
    assert [child.wait(timeout=120) for child in children] == [0, 0, 0]
    assert hotcache.stamp("arena.Arena") == start + 4 * per_process
    assert hotcache.stamp("arena.Arena:edited") == hotcache.stamp("arena.Arena")


def test_a_memo_must_name_watched_models_only():
    with pytest.raises(ValueError, match="WATCHED"):
        hotcache.Memo("unwatched", invalidated_by=("arena.Comparison",))
    with pytest.raises(ValueError, match="not watched"):
        hotcache.changed("arena.Comparison")


def test_new_rows_leave_copies_keyed_by_row_and_edits_clear_them(arena_factory, settings):
    # given a rendered output and the matchmaking index, both cached
    settings.ARENA_CACHE_SECONDS = 3600
    systems, prompts = arena_factory("text", n_systems=2, n_prompts=1)
    output = Output.objects.filter(system=systems[0]).first()
    render = {"calls": 0}

    def rendered():
        render["calls"] += 1
        return output.text

    presenters._sides.get(output.pk, rendered)
    index = matchmaking.match_index("text")
    # when a new output is saved (a live battle's answer)
    extra = System.objects.create(name="newcomer", modality="text")
    Output.objects.create(system=extra, prompt=prompts[0], text="new")
    # then the rendered output is kept, and the index (which new outputs join) is rebuilt
    presenters._sides.get(output.pk, rendered)
    assert render["calls"] == 1
    assert matchmaking.match_index("text") is not index
    # when the output itself is edited, then its copy is made again
    output.text = "edited"
    output.save()
    assert presenters._sides.get(output.pk, rendered) == "edited" and render["calls"] == 2

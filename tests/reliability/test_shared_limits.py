"""Every rate limit is one budget for all hosts: two processes (two "hosts") counting against
the same database or the same Redis share it, whether the limit refuses (the arena's, a
voter's live prompts) or waits (a judge endpoint's pacing); and worker presence lives in
the same Redis, so one host sees another's workers."""

import subprocess
import sys
import time

import pytest

from arena import ratelimit
from arena.jobs import workers
from arena.models import System

from .conftest import ROOT

WINDOW_START = 1_800_000_020.0  # a pinned clock, 20 s into a minute: every count below falls in one window
BACKENDS = ["database", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture
def host_env(request, tmp_path, settings):
    """The environment of another host's process on the same shared state, with this
    process pointed at the same Redis when the backend is Redis."""
    from tests.processes import process_env

    overrides = {"DUET_REDIS_URL": ""}
    if request.node.callspec.params["backend"] == "redis":
        url, _, _ = request.getfixturevalue("redis_server")
        settings.REDIS_URL = overrides["DUET_REDIS_URL"] = url
    return process_env(tmp_path, **overrides)


def run_host(env, script: str, *args) -> list[str]:
    """Run ``script`` as other hosts' processes would, two at once; returns what each printed."""
    runs = [subprocess.Popen([sys.executable, "-c", script, *map(str, args)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    outputs = [run.communicate(timeout=180) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err[-2000:] for _, err in outputs]
    return [out for out, _ in outputs]


COUNT_SCRIPT = """
import sys
import django
django.setup()
from arena import ratelimit
rate = ratelimit.Rate(5, 60, "minute")
print(sum(ratelimit.count("shared-budget", rate, now=float(sys.argv[1])).allowed for _ in range(8)))
"""


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.django_db(transaction=True)
def test_two_hosts_counting_at_once_share_one_budget(backend, host_env):
    # given a budget of 5 a minute, and two processes asking 8 times each in one minute
    outputs = run_host(host_env, COUNT_SCRIPT, WINDOW_START)
    # then 5 were allowed between them, not 5 each
    assert sum(int(out) for out in outputs) == 5
    # and this process, a third host, finds the budget spent too
    counted = ratelimit.count("shared-budget", ratelimit.Rate(5, 60, "minute"), now=WINDOW_START)
    assert counted.n == 17 and not counted.allowed and counted.retry_after == 40  # 20 s into the minute


PACE_SCRIPT = """
import sys
import django
django.setup()
from arena import ratelimit
now = float(sys.argv[1])
pacer = ratelimit.Pacer("judge:shared", ratelimit.Rate.per_second(2, burst=2), name="the endpoint",
                        max_wait_s=0, clock=lambda: now)
print(pacer.acquire())
"""


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.django_db(transaction=True)
def test_a_judge_endpoint_paced_from_two_hosts_makes_the_third_wait(backend, host_env):
    # given two hosts that each sent one request to an endpoint allowed 2 a second
    assert [float(out) for out in run_host(host_env, PACE_SCRIPT, WINDOW_START)] == [0.0, 0.0]
    # when a third request comes from this host in the same second
    clock = {"now": WINDOW_START + 0.25}
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock["now"] += seconds

    pacer = ratelimit.Pacer("judge:shared", ratelimit.Rate.per_second(2, burst=2), name="the endpoint",
                            max_wait_s=5, clock=lambda: clock["now"], sleep=sleep)
    # then it waits for the next second's window rather than failing, and goes then
    assert pacer.acquire() == pytest.approx(0.75)
    assert slept == pytest.approx([0.75])


LIVE_SCRIPT = """
import sys
import django
django.setup()
from arena.live import battles
from arena.models import Judge
battles.start_live_battle(Judge.objects.get(pk=int(sys.argv[1])), "text", "a prompt from another host")
print("sent")
"""


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.django_db(transaction=True)
def test_a_voters_live_prompts_are_counted_across_hosts(backend, host_env, annotator, settings):
    from arena import errors
    from arena.live import battles
    from arena.voting.actions import judge_for_user

    # given a voter allowed 2 live prompts an hour, who sent one on each of two other hosts
    settings.LIVE_PROMPTS_PER_HOUR = 2
    for name in ("alpha", "beta"):
        System.objects.create(name=name, provider="transformers", provider_config={"model": "unused"})
    judge = judge_for_user(annotator)
    run_host({**host_env, "DUET_LIVE_PROMPTS_PER_HOUR": "2"}, LIVE_SCRIPT, judge.pk)
    # when they send a third prompt here
    with pytest.raises(errors.RateLimited) as refused:
        battles.start_live_battle(judge, "text", "one more")
    # then it is refused with the hour's message and the seconds to wait
    assert refused.value.message == "you have sent 2 prompts in the last hour; the limit is 2. Try again later."
    assert 1 <= refused.value.retry_after <= 3600


# --- worker presence ------------------------------------------------------------------------------


@pytest.mark.redis
def test_worker_presence_lives_in_the_shared_redis(redis_server, settings, tmp_path):
    import redis

    url, _, _ = redis_server
    # given the shared state's Redis (the broker is something else: the test settings' memory://)
    settings.REDIS_URL = url
    # when a worker on one host records its queues
    workers.presence_store().write(workers.WorkerPresence("celery@gpu-host", 7, ("training",), time.time()))
    # then a process on another host (its own client, its own empty DUET_VAR_DIR) sees it
    other_host = workers.RedisPresenceStore(redis.Redis.from_url(url))
    assert [w.hostname for w in other_host.all()] == ["celery@gpu-host"]
    assert workers.queue_has_worker("training") is True
    assert not (tmp_path / "var" / "workers").exists()  # nothing written to this host's files
    # and without DUET_REDIS_URL the records are this host's files, as before
    settings.REDIS_URL = ""
    assert workers.workers_for("training") == []

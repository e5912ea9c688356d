"""The OpenAI-compatible judge against a real HTTP server on a thread that mimics the API."""

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from arena import ratelimit
from routing.judges import UNPARSABLE, JudgeError, PairItem, get_judge
from routing.judges.openai_compatible import OpenAICompatibleJudge, letter_probs

ITEM = PairItem("q1", "What is 2 + 2?", a="GOOD: 4", b="5")


class FakeChatCompletions(BaseHTTPRequestHandler):
    """Answers like a judge that spots the answer marked GOOD. The model name picks the behaviour:
    ``logprobs`` (returns top_logprobs when asked), ``plain`` (never does), ``garbage`` (no
    verdict), ``flaky`` (429 once, then plain), ``biased`` (always [[A]]), ``refuses-logprobs``
    (400 when asked for logprobs)."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        with server.lock:
            server.requests.append(body)
            fail = body["model"] == "flaky" and server.failures_left > 0
            server.failures_left -= fail
        if fail:
            return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if body["model"] == "refuses-logprobs" and body.get("logprobs"):
            return self._send(400, {"error": {"message": "logprobs is not supported by this model"}})
        shown_first = body["messages"][-1]["content"].split("[The Start of Assistant B's Answer]")[0]
        letter = "A" if "GOOD" in shown_first.split("[The Start of Assistant A's Answer]")[1] else "B"
        if body["model"] == "biased":
            letter = "A"
        tokens = ["The", " first", " is", " right", ".", " [[", letter, "]]"]
        text = "Both answers look fine to me." if body["model"] == "garbage" else "".join(tokens)
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if body["model"] == "logprobs" and body.get("logprobs"):
            entries = [{"token": t, "logprob": -0.01, "top_logprobs": [{"token": t, "logprob": -0.01}]} for t in tokens]
            other = "B" if letter == "A" else "A"
            entries[6]["top_logprobs"] = [{"token": letter, "logprob": math.log(0.6)},
                                          {"token": other, "logprob": math.log(0.15)},
                                          {"token": "C", "logprob": math.log(0.05)},
                                          {"token": " the", "logprob": math.log(0.2)}]
            choice["logprobs"] = {"content": entries}
        self._send(200, {"id": "x", "object": "chat.completion", "choices": [choice],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 8}})

    def _send(self, status, payload, headers=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeChatCompletions)
    server.requests, server.lock, server.failures_left = [], threading.Lock(), 1
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _judge(server, model, **config):
    # Not paced unless a test says so: pacing counts in the database (tests below).
    return OpenAICompatibleJudge({"base_url": f"http://127.0.0.1:{server.server_port}/v1", "model": model,
                                  "requests_per_second": 0, "backoff_s": 0, "retries": 2, **config})


def test_logprobs_give_probabilities_in_both_orders(endpoint):
    verdict = _judge(endpoint, "logprobs").judge([ITEM])[0]
    assert verdict.verdict == "a" and verdict.order_consistent is True
    # 0.6 / 0.15 / 0.05 renormalised over the three letters (" the" is not a verdict)
    assert (verdict.p_a, verdict.p_b, verdict.p_tie) == pytest.approx((0.75, 0.1875, 0.0625))
    assert [o.source for o in verdict.orders] == ["logprobs", "logprobs"]
    assert len(endpoint.requests) == 2
    assert all(r["logprobs"] is True and r["top_logprobs"] == 5 and r["temperature"] == 0 for r in endpoint.requests)


def test_without_logprobs_the_verdict_is_parsed(endpoint):
    verdict = _judge(endpoint, "plain").judge([ITEM, PairItem("q2", "2 + 2?", a="5", b="GOOD: 4")])
    assert [v.verdict for v in verdict] == ["a", "b"]
    assert verdict[0].p_a == 1.0 and verdict[0].orders[0].source == "parsed"
    assert "[[A]]" in verdict[0].orders[0].raw_text


def test_an_answer_without_a_verdict_is_unparsable(endpoint):
    verdict = _judge(endpoint, "garbage").judge([ITEM])[0]
    assert verdict.verdict == UNPARSABLE and verdict.p_a is None and verdict.confidence is None
    assert "Both answers look fine" in verdict.raw_text


def test_a_429_is_retried_then_succeeds(endpoint):
    verdict = _judge(endpoint, "flaky", concurrency=1).judge([ITEM])[0]
    assert verdict.verdict == "a"
    assert len(endpoint.requests) == 3  # the refused attempt, then both orders


def test_position_bias_shows_as_inconsistent_orders(endpoint):
    verdict = _judge(endpoint, "biased").judge([ITEM])[0]
    assert [o.verdict for o in verdict.orders] == ["a", "b"]
    assert verdict.order_consistent is False and verdict.verdict == "tie"


def test_an_endpoint_that_refuses_logprobs_is_asked_again_without(endpoint):
    judge = _judge(endpoint, "refuses-logprobs", concurrency=1)
    assert judge.judge([ITEM])[0].verdict == "a"
    assert judge.logprobs is False
    assert [bool(r.get("logprobs")) for r in endpoint.requests] == [True, False, False]


# --- pacing: the endpoint's budget, shared through arena.ratelimit ------------------------------
# The judge's threads count in the database on connections of their own, so these tests
# commit (transaction=True) rather than hold the test's transaction open against them.

START = 1_800_000_000.0  # on a window edge for windows of 0.5 s


def fake_clock(*judges, start=START):
    """One clock for the judges' pacers (several judges: several hosts); returns its state,
    with every sleep recorded."""
    state = {"now": start, "slept": []}

    def sleep(seconds):
        state["slept"].append(seconds)
        state["now"] += seconds

    for judge in judges:
        judge.pacer.clock, judge.pacer.sleep = (lambda: state["now"]), sleep
    return state


@pytest.mark.django_db(transaction=True)
def test_every_request_waits_for_the_rate_limit(endpoint):
    # given 2 requests a second in windows of 1 request (one thread, so one clock reads in order)
    judge = _judge(endpoint, "plain", requests_per_second=2, burst=1, concurrency=1)
    clock = fake_clock(judge)
    # when it judges two items (4 requests)
    judge.judge([ITEM, ITEM])
    # then each request after the first waited for the next half-second window
    assert clock["now"] - START == pytest.approx(1.5)
    assert clock["slept"] == pytest.approx([0.5, 0.5, 0.5])
    assert len(endpoint.requests) == 4


@pytest.mark.django_db(transaction=True)
def test_a_burst_goes_at_once_then_the_rate(endpoint):
    judge = _judge(endpoint, "plain", requests_per_second=4, burst=2, concurrency=1)  # 2 per 0.5 s
    clock = fake_clock(judge)
    judge.judge([ITEM, ITEM])
    assert clock["slept"] == pytest.approx([0.5])  # requests 1-2 in the first window, 3-4 in the next


@pytest.mark.django_db(transaction=True)
def test_two_hosts_calling_one_endpoint_share_its_budget(endpoint):
    # given two workers (two judges, each with its own pacer) calling one endpoint and model
    host_a, host_b = (_judge(endpoint, "plain", requests_per_second=2, burst=1, concurrency=1) for _ in range(2))
    clock = fake_clock(host_a, host_b)
    # when each judges one item (2 requests), one after the other
    host_a.judge([ITEM])
    host_b.judge([ITEM])
    # then B's first request waits for the window A spent: 4 requests take 3 windows' wait,
    # where two budgets of their own would have let B start at once
    assert clock["now"] - START == pytest.approx(1.5)
    # and another model on the same server has a budget of its own
    other = _judge(endpoint, "logprobs", requests_per_second=2, burst=1, concurrency=1)
    fake_clock(other, start=clock["now"])
    assert other.pacer.acquire() == 0


@pytest.mark.django_db(transaction=True)
def test_a_wait_longer_than_allowed_fails_naming_the_endpoint_and_limit(endpoint):
    # given a window of one request a second, and at most 0.2 s of waiting
    judge = _judge(endpoint, "plain", requests_per_second=1, max_wait_s=0.2, concurrency=1)
    fake_clock(judge)
    # when the second request would have to wait most of a second
    with pytest.raises(JudgeError) as failed:
        judge.judge([ITEM])
    # then the judge gives up, saying which endpoint and which limit
    message = str(failed.value)
    assert f"the judge endpoint http://127.0.0.1:{endpoint.server_port}/v1 (model plain)" in message
    assert "its limit of 1 requests per second is spent" in message and "longer than 0.2 s" in message
    assert len(endpoint.requests) == 1


def test_pacing_configuration_is_checked(endpoint):
    for bad in ({"requests_per_second": -1}, {"requests_per_second": "fast"}, {"requests_per_second": 2, "burst": 0},
                {"requests_per_second": 2, "max_wait_s": -1}):
        with pytest.raises(JudgeError, match="invalid OpenAI-compatible judge config"):
            _judge(endpoint, "plain", **bad)
    assert _judge(endpoint, "plain", requests_per_second="off").pacer is None
    assert _judge(endpoint, "plain", requests_per_second=0.5).pacer.rate == ratelimit.Rate(1, 2.0, "2 seconds")


def test_configuration_from_the_environment(endpoint, monkeypatch):
    monkeypatch.setenv("DUET_JUDGE_BASE_URL", f"http://127.0.0.1:{endpoint.server_port}/v1")
    monkeypatch.setenv("DUET_JUDGE_RPS", "50")
    monkeypatch.setenv("DUET_JUDGE_LOGPROBS", "0")
    judge = get_judge("openai:plain")
    assert judge.name == "openai:plain" and judge.pacer.rate == ratelimit.Rate(50, 1.0, "second")
    assert judge.logprobs is False
    monkeypatch.setenv("DUET_JUDGE_API_KEY_ENV", "DUET_TEST_MISSING_KEY")
    monkeypatch.delenv("DUET_TEST_MISSING_KEY", raising=False)
    with pytest.raises(JudgeError, match="DUET_TEST_MISSING_KEY"):
        get_judge("openai:plain").judge([ITEM])


def test_letter_probs_read_merged_bracket_tokens():
    text = "Verdict: [[B]]"
    tokens = [{"token": "Verdict:"}, {"token": " [[B", "top_logprobs": [{"token": " [[B", "logprob": math.log(0.5)},
                                                                       {"token": " [[A", "logprob": math.log(0.5)}]},
              {"token": "]]"}]
    assert letter_probs(text, tokens) == pytest.approx({"A": 0.5, "B": 0.5, "C": 0.0})

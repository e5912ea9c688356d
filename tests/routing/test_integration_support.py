"""Shared pieces of the routing integration tests (no tests here): a scripted judge that
fulfils the Judge contract, a fake OpenAI-compatible endpoint, and project builders."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from routing.judges import UNPARSABLE, AutomaticJudge, JudgeVerdict, PairItem


class ScriptedJudge(AutomaticJudge):
    """Says what each item's prompt tells it to: "say:a", "say:b", "say:tie" or "say:garbage"
    (unparsable); "conf:0.7" sets the confidence, "flip" makes the two orders disagree.
    Records every item it was shown, and calls ``on_call`` before each batch."""

    name = "scripted"
    version = "v1"

    def __init__(self, on_call=None):
        self.seen: list[PairItem] = []
        self.calls = 0
        self.on_call = on_call

    def _judge_supported(self, items: list[PairItem]) -> list[JudgeVerdict]:
        if self.on_call:
            self.on_call(self.calls)
        self.calls += 1
        self.seen.extend(items)
        return [self._say(item) for item in items]

    def _say(self, item: PairItem) -> JudgeVerdict:
        words = dict(part.split(":", 1) for part in item.prompt.split() if ":" in part)
        verdict = words.get("say", "a")
        if verdict == "garbage":
            return self._verdict(item.id, UNPARSABLE, order_consistent=False, detail="no [[X]] in either order")
        confidence = float(words.get("conf", "0.8"))
        rest = (1 - confidence) / 2
        probs = {f"p_{v}": (confidence if v == verdict else rest) for v in ("a", "b", "tie")}
        return self._verdict(item.id, verdict, confidence=confidence, order_consistent="flip" not in item.prompt,
                             **probs)


def scripted_rows(specs, prefix="item", category=None, annotators=()):
    """Import rows whose prompt scripts the judge: ``specs`` are (say, confidence, flip) tuples."""
    rows = []
    for i, (say, confidence, flip) in enumerate(specs):
        row = {
            "id": f"{prefix}-{i}",
            "prompt": f"Question {prefix} {i} say:{say} conf:{confidence}" + (" flip" if flip else ""),
            "a": {"system": "sys-x", "text": f"Answer x{i} " + "word " * (i % 4)},
            "b": {"system": "sys-y", "text": f"Answer y{i}"},
        }
        if category:
            row["category"] = category(i) if callable(category) else category
        if annotators:
            row["judgments"] = [{"annotator": name, "verdict": verdict(i)} for name, verdict in annotators]
        rows.append(row)
    return rows


def jsonl(rows) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def import_rows(project, rows, name="items.jsonl"):
    from annotation import actions

    return actions.import_comparisons(project, io.BytesIO(jsonl(rows)), name)


class FakeChatCompletions(BaseHTTPRequestHandler):
    """A judge behind an OpenAI-compatible API: prefers the answer containing GOOD; answers with
    no verdict at all when the question contains MUDDLE."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.requests.append(body)
        user = body["messages"][-1]["content"]
        first = user.split("[The Start of Assistant A's Answer]")[1].split("[The End of Assistant A's Answer]")[0]
        text = f"The {'first' if 'GOOD' in first else 'second'} is better. [[{'A' if 'GOOD' in first else 'B'}]]"
        if "MUDDLE" in user:
            text = "Both answers have merit; I would rather not choose."
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        payload = {"id": "x", "object": "chat.completion", "choices": [choice]}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def chat_endpoint(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeChatCompletions)
    server.requests, server.lock = [], threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("DUET_JUDGE_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
    monkeypatch.setenv("DUET_JUDGE_MODEL", "fake-judge")
    monkeypatch.setenv("DUET_JUDGE_RPS", "0")  # not paced: pacing has its own tests (test_openai_judge.py)
    monkeypatch.setenv("DUET_JUDGE_LOGPROBS", "0")
    yield server
    server.shutdown()
    server.server_close()



@pytest.fixture
def reward_run(db, tiny_model_dir, tmp_path, settings):
    """A finished reward-model TrainingRun whose reward_model folder is a tiny random
    sequence classifier with SmolLM2's tokenizer (what RewardTrainer saves)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.models import RunKind, RunStatus, TrainingRun

    run = TrainingRun.objects.create(kind=RunKind.REWARD, status=RunStatus.SUCCEEDED, base_model=str(tiny_model_dir))
    output_dir = tmp_path / "runs" / f"run-{run.pk}"
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir), num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    model.save_pretrained(str(output_dir / "reward_model"))
    tokenizer.save_pretrained(str(output_dir / "reward_model"))
    (output_dir / "dataset.jsonl").write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
    run.artifacts = {"output_dir": str(output_dir), "dataset": str(output_dir / "dataset.jsonl")}
    run.save(update_fields=["artifacts"])
    return run


def make_routed_project(name, policy="uncertainty", rows=(), members=(), judge_spec="smollm2", **fields):
    """A project with its routing policy and budget, its rows imported (``pending`` unless
    human_only: nothing routes them until the test does) and its members."""
    from annotation import actions as annotation_actions
    from routing import actions

    project = annotation_actions.create_project(name=name, routing_policy=policy, overlap=1, **fields)
    actions.update_routing_settings(project, judge_spec=judge_spec)
    if rows:
        import_rows(project, list(rows))
    for user in members:
        annotation_actions.add_member(project, user)
    return project


def answer_everything(project, user, verdict_for=lambda item: "a") -> list:
    """Lease and answer every item the queue serves this annotator; the items served, in order."""
    from annotation import actions
    from annotation.errors import NothingToAnnotate
    from arena.voting.actions import issue_vote_token, judge_for_user

    served = []
    while True:
        try:
            assignment = actions.next_assignment(project, user)
        except NothingToAnnotate:
            return served
        item = assignment.item
        served.append(item)
        token = issue_vote_token(item.comparison, judge_for_user(user))
        submission = actions.check_submission(project, user, assignment_id=assignment.pk, token=token,
                                              verdict=verdict_for(item))
        actions.do_record_submission(submission)

"""The world the journey walks: one Duet install taken through the states a real one goes
through, each reached by real actions (management commands, the HTTP API as each role
would call it, Celery tasks run eagerly in this process), never by writing rows directly.

    fresh     migrate, three accounts, `seed_demo --if-empty` (the text outputs are queued,
              the worker has not run yet: the text arena is empty, images and audio are not)
    voted     the worker has generated the text outputs; the annotator and the researcher
              have voted in the arena (text and image)
    imported  the researcher created two projects from real data (an HH-RLHF slice and a
              PandaLM slice, tests/data/real/), added the annotator, who judged a few items
    judged    a judge (the tiny random model) has judged the HH-RLHF project
    exported  the researcher exported the HH-RLHF project as CSV
    trained   a DPO run on the HH-RLHF project finished (1 step) and its tuned system joined
              the arena with its outputs
    live      the annotator fought a live battle and voted; a second one is left open

Every model is the tiny random-weight Llama of tests/conftest_models.py (generation 12
new tokens, training one step on 64-token pairs): the whole world took about a minute on
the shared 2-core box, most of it the 60 demo answers and the DPO run.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from django.core.management import call_command
from django.test import Client

STATES = ("fresh", "voted", "imported", "judged", "exported", "trained", "live")
ROLES = ("anonymous", "annotator", "researcher", "admin")
PASSWORD = "correct-horse-battery"
REAL_DATA = Path(__file__).resolve().parent.parent / "data" / "real"
HH_PROJECT, PANDALM_PROJECT = "hh-rlhf-slice", "pandalm-slice"
# Few pairs and short generations keep every model step well under a second.
HH_ROWS, PANDALM_ROWS = 12, 8
MAX_NEW_TOKENS = 12


def set_eager(value: bool) -> bool:
    """Run queued Celery tasks at once in this process (True) or leave them queued; returns
    the previous value. With the CELERY namespace, Celery reads CELERY_TASK_ALWAYS_EAGER
    before task_always_eager, so both are set."""
    from config.celery import app

    previous = bool(app.conf.task_always_eager)
    app.conf.task_always_eager = value
    app.conf.CELERY_TASK_ALWAYS_EAGER = value
    return previous


class WorldError(AssertionError):
    """A step of the journey could not be taken: the action the step stands for failed."""


def _check(response, *codes: int) -> dict:
    if response.status_code not in codes:
        body = response.content[:600].decode(errors="replace") if hasattr(response, "content") else ""
        raise WorldError(f"{response.request['REQUEST_METHOD']} {response.request['PATH_INFO']}: "
                         f"expected {codes}, got {response.status_code}: {body}")  # fmt: skip
    if response.get("Content-Type", "").startswith("application/json"):
        return response.json()
    return {}


def hh_rlhf_slice(n: int = HH_ROWS) -> bytes:
    lines = []
    with gzip.open(REAL_DATA / "hh-rlhf-harmless-base-test.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            # Short dialogues: the tiny models truncate long ones anyway, and they page faster.
            if len(row["chosen"]) < 600 and len(row["rejected"]) < 600:
                lines.append(line.strip())
            if len(lines) == n:
                break
    return ("\n".join(lines) + "\n").encode()


def pandalm_slice(n: int = PANDALM_ROWS) -> bytes:
    rows = json.loads((REAL_DATA / "pandalm-testset-v1.json").read_text(encoding="utf-8"))
    return json.dumps(rows[:n]).encode()


@dataclass
class World:
    tiny_model_dir: Path
    state: int = -1  # index into STATES of the state reached
    ids: dict = field(default_factory=dict)  # real objects the walks name: project ids, run id, ...
    memo: dict = field(default_factory=dict)  # walks done in a state, shared by that state's tests

    # --- clients -----------------------------------------------------------------------

    def user(self, role: str):
        from django.contrib.auth import get_user_model

        return get_user_model().objects.get(username=role)

    def client(self, role: str) -> Client:
        client = Client(raise_request_exception=False)
        if role != "anonymous":
            client.force_login(self.user(role))
        return client

    def _post_json(self, client: Client, path: str, body: dict, *codes: int) -> dict:
        return _check(client.post(path, json.dumps(body), content_type="application/json"), *codes)

    # --- the states ----------------------------------------------------------------------

    def advance_to(self, state: str) -> None:
        target = STATES.index(state)
        if target < self.state:
            raise WorldError(f"the world is at {STATES[self.state]!r}, past {state!r}: states only move forward")
        while self.state < target:
            step = STATES[self.state + 1]
            getattr(self, f"_to_{step}")()
            self.state += 1

    def _to_fresh(self) -> None:
        for role in ROLES[1:]:
            call_command("create_account", role, role=role, password=PASSWORD, stdout=io.StringIO())
        # The worker is not running yet: text generation is queued (on the in-memory broker).
        set_eager(False)
        call_command("seed_demo", if_empty=True, stdout=io.StringIO())
        # From here on the "worker" runs every queued task at once, in this process.
        set_eager(True)

    def _to_voted(self) -> None:
        from arena.providers.generation import missing_prompts
        from arena.models import Modality, System
        from arena.tasks import generate_outputs

        for system in System.objects.filter(modality=Modality.TEXT, is_active=True):
            prompt_ids = list(missing_prompts(system).values_list("id", flat=True))
            if prompt_ids:
                generate_outputs.apply(args=[system.pk, prompt_ids])
        for role, votes in (("annotator", 6), ("researcher", 3)):
            client = self.client(role)
            for modality, n in (("text", votes), ("image", 2)):
                for i in range(n):
                    served = _check(client.get("/api/arena/next/", {"modality": modality}), 200)
                    body = {"token": served["token"], "verdict": "ab"[i % 2], "time_to_vote_ms": 4000}
                    voted = self._post_json(client, "/api/arena/vote/", body, 201)
                    self.ids.setdefault("judgment", voted["judgment"])

    def _import(self, client: Client, name: str, data: bytes, filename: str, fmt: str) -> int:
        fields = {"name": name, "overlap": 2, "min_seconds_per_item": 0, "guidelines": f"Pick the better one ({fmt})."}
        project = self._post_json(client, "/api/projects/", fields, 201)
        upload = io.BytesIO(data)
        upload.name = filename
        _check(client.post(f"/api/projects/{project['id']}/import/", {"file": upload, "format": fmt}), 201)
        for member, role in (("annotator", "annotator"), ("researcher", "reviewer")):
            self._post_json(client, f"/api/projects/{project['id']}/members/", {"username": member, "role": role}, 200)
        return project["id"]

    def _to_imported(self) -> None:
        researcher = self.client("researcher")
        self.ids["hh"] = self._import(researcher, HH_PROJECT, hh_rlhf_slice(), "hh-rlhf.jsonl", "hh-rlhf")
        self.ids["pandalm"] = self._import(researcher, PANDALM_PROJECT, pandalm_slice(), "pandalm.json", "pandalm")
        from annotation.models import ProjectItem

        self.ids["hh_item"] = ProjectItem.objects.filter(project_id=self.ids["hh"]).order_by("pk").first().pk
        annotator = self.client("annotator")
        for i in range(3):
            task = _check(annotator.get(f"/api/projects/{self.ids['hh']}/next/"), 200)
            path = f"/api/projects/{self.ids['hh']}/assignments/{task['assignment']}/judgment/"
            answer = {"token": task["token"], "verdict": "ab"[i % 2], "time_to_vote_ms": 5000}
            self._post_json(annotator, path, answer, 201)

    def _to_judged(self) -> None:
        researcher = self.client("researcher")
        job = self._post_json(researcher, f"/api/routing/projects/{self.ids['hh']}/judge/",
                              {"judge": f"model:{self.tiny_model_dir}"}, 202)  # fmt: skip
        self.ids["judging_job"] = job["id"]
        done = _check(researcher.get(f"/api/routing/jobs/{job['id']}/"), 200)
        if done["status"] != "succeeded":
            raise WorldError(f"the judging job ended {done['status']}: {done.get('error')}")

    def _to_exported(self) -> None:
        researcher = self.client("researcher")
        job = self._post_json(researcher, "/api/annotation/exports/",
                              {"format": "csv", "project": HH_PROJECT, "aggregate": "majority"}, 202)  # fmt: skip
        self.ids["export_job"] = job["id"]
        done = _check(researcher.get(f"/api/annotation/exports/{job['id']}/"), 200)
        if done["status"] != "succeeded":
            raise WorldError(f"the export ended {done['status']}: {done.get('error')}")

    def _to_trained(self) -> None:
        researcher = self.client("researcher")
        request = {"kind": "dpo", "project": HH_PROJECT, "base": "smollm2-concise", "max_steps": 1,
                   "filters": {"aggregate": "majority", "source": "human"},
                   "recipe": {"training": {"batch_size": 2},
                              "data": {"max_length": 64, "validation_fraction": 0.25}}}  # fmt: skip
        run = self._post_json(researcher, "/api/training/runs/", request, 201, 202)
        self.ids["run"] = run["id"]
        done = _check(researcher.get(f"/api/training/runs/{run['id']}/"), 200)
        if done["status"] != "succeeded":
            raise WorldError(f"the training run ended {done['status']}: {done.get('error')}")

    def _to_live(self) -> None:
        annotator = self.client("annotator")
        battle = self._post_json(annotator, "/api/live/battles/", {"message": "Tell me about the sea."}, 201)
        state = _check(annotator.get(f"/api/live/battles/{battle['battle']}/"), 200)
        if not state["can_vote"]:
            raise WorldError(f"the live battle cannot be voted on: {state}")
        self._post_json(annotator, f"/api/live/battles/{battle['battle']}/vote/", {"verdict": "a"}, 201)
        self.ids["battle"] = battle["battle"]
        # A second battle stays open, so the walks meet one that is not voted on yet.
        opened = self._post_json(annotator, "/api/live/battles/", {"message": "And about rivers?"}, 201)
        self.ids["open_battle"] = opened["battle"]

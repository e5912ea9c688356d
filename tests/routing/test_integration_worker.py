"""Slow: routing through a real Celery worker on the embedded filesystem broker, and the real
SmolLM2 judge on a project."""

import json
import subprocess
import sys
import time

import pytest

from annotation.models import ProjectItem, Route
from arena.models import JudgeKind, Judgment
from routing import actions, report
from routing.models import JudgingJob
from tests import processes

from .test_integration_support import make_routed_project, scripted_rows

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_import_is_judged_and_routed_by_the_worker(tiny_model_dir, tmp_path):
    # given a project routed by uncertainty with the tiny model as its judge, two pairs a batch
    project = make_routed_project("through-the-worker", human_budget_fraction=0.5,
                                  judge_spec=f"model:{tiny_model_dir}")  # fmt: skip
    actions.update_routing_settings(project, batch_size=2)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(row) + "\n" for row in scripted_rows([("a", 0.8, False)] * 6)))
    env = processes.process_env(tmp_path)
    worker = processes.start_worker(env, tmp_path)
    try:
        # when items are imported by the command line (another process: the signal queues the task)
        imported = subprocess.run(
            [sys.executable, "manage.py", "import_comparisons", str(rows), "--project", project.name],
            cwd=processes.ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert imported.returncode == 0, imported.stderr
        # then the worker judges them batch by batch and routes them
        progress, deadline = set(), time.monotonic() + 240
        while time.monotonic() < deadline:
            job = JudgingJob.objects.filter(project=project).first()
            if job is not None:
                progress.add(job.done)
                if not job.is_active:
                    break
            assert worker.alive(), worker.log()
            time.sleep(0.2)
    finally:
        worker.stop()
    job = JudgingJob.objects.get(project=project)
    assert job.status == "succeeded", job.error + worker.log()
    assert job.trigger == "import" and (job.done, job.total) == (6, 6)
    assert progress <= {0, 2, 4, 6}
    items = ProjectItem.objects.filter(project=project)
    assert items.filter(route=Route.HUMAN).count() == 3 and items.filter(route=Route.JUDGE).count() == 3
    assert Judgment.objects.filter(judge__kind=JudgeKind.LLM, comparison__project_items__project=project).count() == 6
    assert "run_judging_job" in worker.log(20000)


def test_smollm2_judges_a_project_and_its_figures_are_reported(smollm2_dir):
    rows = scripted_rows([("a", 0.8, False)] * 4, annotators=[("ann-1", lambda i: "a" if i % 2 else "b")])
    for row in rows:
        row["prompt"] = "What is the capital of France?"
        row["a"]["text"], row["b"]["text"] = "Paris is the capital of France.", "I like turtles."
    project = make_routed_project("smol", policy="human_only", rows=rows)
    summary = actions.judge_project(project, spec="smollm2")
    assert summary.judged + summary.unparsable == 4 and summary.judge.startswith("smollm2-135m-instruct:logits")
    figures = report.project_report(project)
    assert figures.agreement.judged == 4 and figures.agreement.order_known == 4
    # whatever the figures are, they are reported as they are (printed for the record)
    print({"agreement": figures.agreement.to_dict(), "notes": figures.notes})

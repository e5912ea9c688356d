"""The run page and its JSON status: the progress phase, each evaluation with its sample
size (and a warning when it is small), counts as integers, the loss curve as inline SVG,
and live updates in a real browser."""

import pytest

from arena.board.snapshots import default_arena
from training import results
from training.models import TrainingRun

OOM = ("killed by the operating system, most likely for lack of memory; lower the batch size or max length, "
       "or use LoRA")  # fmt: skip


@pytest.fixture
def make_run(db):
    arena = default_arena()

    def make(**fields):
        values = {"kind": "dpo", "arena": arena, "base_model": "tiny", "loss": "sigmoid", "recipe": {}}
        return TrainingRun.objects.create(**{**values, **fields})

    return make


def page_of(client, researcher, run) -> str:
    client.force_login(researcher)
    response = client.get(f"/training/runs/{run.pk}/")
    assert response.status_code == 200
    return response.content.decode()


# --- evaluations -----------------------------------------------------------------------------------


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I:
    # 0/10 -> 0 to 0.2775; 81/263 -> 0.2553 to 0.3662
    low, high = results.wilson_interval(0.0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = results.wilson_interval(81 / 263, 263)
    assert (low, high) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))


def test_accuracy_from_one_pair_is_shown_with_its_size_and_a_warning(make_run, researcher, client):
    run = make_run(status="succeeded", n_pairs=7, metrics={
        "n_pairs": 1, "preference_accuracy": 1.0, "heldout_accuracy": 1.0, "ranking_accuracy": 0.0,
        "base_ranking_accuracy": 0.0, "n_train": 6, "n_validation": 1, "steps": 2, "total_steps": 2,
        "train_loss": 0.693147, "runtime_s": 12.3456, "device": "cpu", "mean_reward_margin": 0.0123456,
    })  # fmt: skip
    page = page_of(client, researcher, run)
    row = page[page.index('data-key="preference_accuracy"'):].split("</tr>")[0]
    assert "1.000" in row and "<td>1</td>" in row and "few pairs: ±0.40" in row
    assert "Fewer than 30 held-out pairs" in page
    # counts are integers, measurements four significant digits; nothing is repeated
    assert "<th>n_train</th><td>6</td>" in page and "<th>steps</th><td>2</td>" in page
    assert "<th>train_loss</th><td>0.6931</td>" in page and "<th>runtime_s</th><td>12.35</td>" in page
    assert "1.0000" not in page and "6.0000" not in page
    assert "<th>n_pairs</th>" not in page and "<th>heldout_accuracy</th>" not in page


def test_enough_pairs_carry_no_warning(make_run, researcher, client):
    run = make_run(status="succeeded", metrics={"n_pairs": 200, "preference_accuracy": 0.62, "heldout_accuracy": 0.62})
    page = page_of(client, researcher, run)
    assert "<td>200</td>" in page and "0.620" in page and "0.55 – 0.68" in page
    assert "few pairs" not in page and "Fewer than 30" not in page


def test_dashboard_shows_held_out_accuracy_with_its_size(make_run, researcher, client):
    make_run(status="succeeded", metrics={"n_pairs": 4, "preference_accuracy": 0.75, "heldout_accuracy": 0.75})
    client.force_login(researcher)
    page = client.get("/training/").content.decode()
    assert "0.750" in page and "(n = 4, few pairs: ±0." in page


# --- progress -----------------------------------------------------------------------------------


def test_status_reports_the_phase_from_the_workers_progress(make_run, researcher, client):
    run = make_run(status="running", n_pairs=120, progress={
        "phase": "evaluation", "phase_done": 12, "phase_total": 40, "step": 10, "total_steps": 10, "loss": 0.51234,
        "rss_mb": 812,
    }, history=[{"step": 1, "loss": 0.69}, {"step": 5, "loss": 0.6}, {"step": 10, "loss": 0.51234}])  # fmt: skip
    client.force_login(researcher)
    state = client.get(f"/training/runs/{run.pk}/status/").json()
    assert state["status"] == "running" and not state["finished"]
    assert state["phase"] == "evaluation" and state["phase_label"] == "evaluating on held-out pairs"
    assert state["progress_text"] == "evaluating on held-out pairs 12 of 40 · step 10 of 10 · loss 0.5123 · 812 MB"
    assert state["percent"] == 100 and state["n_pairs"] == 120
    curve = state["loss_curve"]
    assert curve["first"] == 1 and curve["last"] == 10 and len(curve["points"].split()) == 3
    page = page_of(client, researcher, run)
    assert "evaluating on held-out pairs 12 of 40" in page
    assert 'id="loss-section"' in page and 'id="loss-section" hidden' not in page
    assert f'points="{curve["points"]}"' in page


@pytest.mark.parametrize(
    "progress, text",
    [
        ({}, ""),
        # the worker's first write, before any phase began
        ({"phase": "", "phase_done": 0, "phase_total": 0, "step": 0, "total_steps": 0, "loss": None, "rss_mb": 0,
          "worker": {"host": "gpu-1", "pid": 42}}, ""),
        ({"phase": "training", "step": 0, "total_steps": 40}, "training · step 0 of 40"),
        ({"step": 3, "total_steps": 0}, "step 3 of ?"),
        ({"phase": "loading"}, "loading the model"),
        ({"phase": "dataset", "phase_done": 0, "phase_total": 0}, "building the dataset"),
        ({"phase": "training", "phase_done": 3, "phase_total": 8, "step": 3, "total_steps": 8, "loss": None},
         "training · step 3 of 8"),
        ({"step": 4, "total_steps": 8, "loss": 0.7, "reward_accuracy": 0.5}, "step 4 of 8 · loss 0.7000 · batch accuracy 0.50"),
        ({"phase": "a-new-phase", "rss_mb": 1024.4}, "a-new-phase · 1024 MB"),
    ],
)
def test_progress_text_tolerates_any_subset_of_keys(progress, text):
    assert results.describe_progress(progress) == text


def test_queued_run_without_a_worker_says_so(make_run, researcher, client, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    run = make_run()
    page = page_of(client, researcher, run)
    assert "waiting for a worker" in page
    assert "No worker is consuming the `training` queue" in page
    state = client.get(f"/training/runs/{run.pk}/status/").json()
    assert "--here" in state["worker_warning"] and state["loss_curve"] is None


def test_failure_shows_its_reason_first(make_run, researcher, client):
    run = make_run(status="failed", error=f"Traceback (most recent call last):\n  File x\nRuntimeError: {OOM}",
                   progress={"phase": "reference", "phase_done": 3, "phase_total": 40, "rss_mb": 3900})  # fmt: skip
    page = page_of(client, researcher, run)
    assert '<span id="progress-text">failed while computing reference log-probabilities</span>' in page
    assert f'<p class="error" id="error-summary">RuntimeError: {OOM}</p>' in page
    assert "<details><summary>Details</summary>" in page
    run = make_run(status="failed", error=OOM)
    page = page_of(client, researcher, run)
    assert f'id="error-summary">{OOM}</p>' in page and "<details>" not in page


def test_status_needs_the_view_permission(make_run, annotator, client):
    run = make_run()
    client.force_login(annotator)
    assert client.get(f"/training/runs/{run.pk}/status/").status_code == 403


# --- live, in a browser ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_run_page_updates_in_place_and_reloads_when_done(page, live_server, login, researcher, make_run):
    # given an open page of a queued run
    run = make_run()
    login(page, "res")
    page.goto(f"{live_server.url}/training/runs/{run.pk}/")
    page.evaluate("window.__same_page = true")
    assert page.is_hidden("#loss-section")
    # when the worker reports progress
    TrainingRun.objects.filter(pk=run.pk).update(status="running", progress={
        "phase": "training", "step": 3, "total_steps": 10, "loss": 0.65, "rss_mb": 700,
    }, history=[{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.68}, {"step": 3, "loss": 0.65}])  # fmt: skip
    # then the page shows it without reloading
    page.wait_for_function("document.getElementById('progress-text').textContent.includes('step 3 of 10')",
                           timeout=10_000)  # fmt: skip
    assert page.inner_text("#run-status") == "running"
    assert page.is_visible("#loss-section")
    assert len(page.get_attribute("#loss-curve polyline", "points").split()) == 3
    assert page.evaluate("document.getElementById('progress').value") == 30
    assert page.evaluate("window.__same_page") is True
    # and when the run ends the page reloads once to show its results
    TrainingRun.objects.filter(pk=run.pk).update(status="succeeded", metrics={
        "n_pairs": 3, "preference_accuracy": 0.5, "heldout_accuracy": 0.5})  # fmt: skip
    page.wait_for_selector("#evaluations", timeout=10_000)
    assert page.evaluate("window.__same_page") is None
    assert "few pairs" in page.inner_text("#evaluations")
    assert page.errors == []

"""Exports: every format from the same selection, the TRL preference rows (and a DPO run on
them), provenance rows, media, atomic writes, streaming, the command, the Celery task, the
API and the admin page."""

import csv
import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation.export import ExportOptions, export_dataset
from annotation.quality.simulation import simulate_crowd
from arena import storage
from tests.annotation.test_quality import SMALL_CROWD, crowd_rows

HH_DATA = Path("/work/shared/data/hh-rlhf-harmless-base-test.jsonl.gz")

@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path):
    settings.ANNOTATION_EXPORT_DIR = str(tmp_path / "exports")


@pytest.fixture
def crowd_project(make_project):
    crowd = simulate_crowd(list(SMALL_CROWD.values()), 60, 3, names=list(SMALL_CROWD), seed=21)
    rows = crowd_rows(crowd, gold_items=10)
    rows[0]["judgments"].append({"judge": "gpt-judge", "verdict": "tie", "confidence": 0.7})
    return make_project(name="crowd", rows=rows), crowd


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def export(tmp_path, name="out", **options):
    options.setdefault("project", "crowd")
    return export_dataset(ExportOptions(output=str(tmp_path / name), **options))


# --- preference rows (trl) --------------------------------------------------------------------


@pytest.mark.django_db
def test_trl_rows_are_one_decided_comparison_each_with_the_dawid_skene_label(crowd_project, tmp_path):
    from annotation.models import ProjectItem

    project, crowd = crowd_project
    result = export(tmp_path, "prefs.jsonl", format="trl")
    rows = read_jsonl(result.path)
    assert result.n_rows == len(rows) > 0
    assert set(rows[0]) == {"id", "prompt", "chosen", "rejected", "weight", "confidence", "n_judgments", "tie"}
    items = {str(item.comparison.public_id): item for item in ProjectItem.objects.select_related(
        "comparison__output_a", "comparison__output_b")}  # fmt: skip
    right = 0
    for row in rows:
        item = items[row["id"]]
        index = int(item.external_id.split("-")[1])
        texts = {"a": item.comparison.output_a.text, "b": item.comparison.output_b.text}
        label = "a" if row["chosen"] == texts["a"] else "b"
        assert {row["chosen"], row["rejected"]} == set(texts.values())
        assert row["prompt"] == item.comparison.prompt.text
        assert row["tie"] is False and row["n_judgments"] == 3
        assert 0.5 <= row["confidence"] <= 1.0 and row["weight"] == row["confidence"]
        right += crowd.judgments.verdicts[crowd.truth[index]] == label
    # Dawid-Skene sees through the flipper: almost every exported label is the truth.
    assert right / len(rows) > 0.9


@pytest.mark.django_db
def test_majority_ties_and_confidence_filters(crowd_project, tmp_path):
    rows = read_jsonl(export(tmp_path, "m.jsonl", format="trl", aggregate="majority").path)
    # Majority vote: a comparison needs a strict plurality; confidence is the share.
    assert all(row["confidence"] in (pytest.approx(2 / 3), 1.0) for row in rows)
    confident = read_jsonl(export(tmp_path, "c.jsonl", format="trl", aggregate="majority", min_confidence=0.9).path)
    assert 0 < len(confident) < len(rows) and all(row["confidence"] == 1.0 for row in confident)
    with_ties = read_jsonl(export(tmp_path, "t.jsonl", format="trl", aggregate="majority", include_ties=True).path)
    ties = [row for row in with_ties if row["tie"]]
    assert ties and len(with_ties) == len(rows) + len(ties)


@pytest.mark.django_db
def test_no_aggregation_gives_one_row_per_judgment_that_prefers_a_side(crowd_project, tmp_path):
    from arena.models import HUMAN_JUDGE_KINDS, Judgment

    rows = read_jsonl(export(tmp_path, "n.jsonl", format="trl", aggregate="none").path)
    decisive = Judgment.objects.filter(verdict__in=("a", "b"), judge__kind__in=HUMAN_JUDGE_KINDS)
    assert len(rows) == decisive.count()
    assert {row["id"] for row in rows} == {str(j.public_id) for j in decisive}
    assert all(row["weight"] == 1.0 and row["n_judgments"] == 1 for row in rows)


@pytest.mark.django_db
def test_source_selects_people_or_automatic_judges(crowd_project, tmp_path):
    judged = read_jsonl(export(tmp_path, "j.jsonl", format="jsonl", source="judge").path)
    assert [(row["source"], row["judge"], row["verdict"]) for row in judged] == [("judge", "gpt-judge", "tie")]
    assert judged[0]["judge_confidence"] == 0.7
    everyone = read_jsonl(export(tmp_path, "e.jsonl", format="jsonl", source="all").path)
    people = read_jsonl(export(tmp_path, "p.jsonl", format="jsonl").path)
    assert len(everyone) == len(people) + 1 and all(row["source"] == "human" for row in people)


# --- per-judgment rows: one contract, every format -------------------------------------------


def read_rows(path, fmt) -> list[dict]:
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "csv":
        with open(path, encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_judgment_rows_carry_provenance_in_every_format(crowd_project, tmp_path, fmt):
    from arena.models import HUMAN_JUDGE_KINDS, Judgment

    project, crowd = crowd_project
    rows = read_rows(export(tmp_path, f"rows.{fmt}", format=fmt).path, fmt)
    judgments = Judgment.objects.filter(judge__kind__in=HUMAN_JUDGE_KINDS)
    assert sorted(row["judgment_id"] for row in rows) == sorted(str(j.public_id) for j in judgments)
    by_id = {str(j.public_id): j for j in judgments.select_related("judge")}
    pseudonyms = {}
    for row in rows:
        judgment = by_id[row["judgment_id"]]
        assert row["verdict"] == judgment.verdict and row["project"] == "crowd"
        assert row["item_id"].startswith("item-") and row["rationale"].startswith("because")
        assert row["source"] == "human" and row["judge_kind"] == "external_human" and row["judge"] == ""
        # A stable pseudonym per annotator, never the name.
        assert row["annotator"].startswith("ann-") and judgment.judge.name not in row["annotator"]
        assert pseudonyms.setdefault(judgment.judge.name, row["annotator"]) == row["annotator"]
        assert 0.0 <= float(row["weight"]) <= 1.0 and 0.0 <= float(row["reliability"]) <= 1.0
        assert row["aggregate_verdict"] in ("a", "b", "tie")
        aspects = row["aspects"] if fmt == "jsonl" else json.loads(row["aspects"])
        assert aspects == {}
        assert row["created_at"].startswith(str(judgment.created_at.year))
    assert len(set(pseudonyms.values())) == len(SMALL_CROWD)
    # The flipper's judgments weigh little: Dawid-Skene believes their verdicts are wrong.
    weight = {
        name: np.mean([float(row["weight"]) for row in rows if row["annotator"] == alias])
        for name, alias in pseudonyms.items()
    }
    assert weight["ann-good"] > 0.8 > 0.2 > weight["ann-flipper"]
    # Same selection, same pseudonyms in the next export.
    again = read_rows(export(tmp_path, f"again.{fmt}", format=fmt).path, fmt)
    assert {row["annotator"] for row in again} == set(pseudonyms.values())


@pytest.mark.django_db
def test_a_correction_replaces_the_judgment_it_supersedes(crowd_project, tmp_path):
    from arena.models import Judgment

    first = Judgment.objects.filter(judge__name="ann-good").order_by("id").first()
    correction = Judgment.objects.create(
        comparison=first.comparison, judge=first.judge, verdict="tie", supersedes=first, time_to_vote_ms=1500
    )
    rows = read_jsonl(export(tmp_path, "c.jsonl", format="jsonl").path)
    ids = {row["judgment_id"] for row in rows}
    assert str(first.public_id) not in ids and str(correction.public_id) in ids
    row = next(row for row in rows if row["judgment_id"] == str(correction.public_id))
    assert row["supersedes"] == str(first.public_id) and row["time_to_vote_ms"] == 1500


# --- conversational prompts, Hugging Face datasets, and a DPO run ------------------------------


@pytest.fixture
def hh_project(db):
    from annotation import actions

    with gzip.open(HH_DATA, "rt", encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(12)]
    project = actions.create_project(name="hh")
    actions.import_comparisons(project, io.BytesIO("".join(lines).encode()), "hh.jsonl", fmt="hh-rlhf")
    return project, [json.loads(line) for line in lines]


@pytest.mark.django_db
def test_hh_dialogues_export_as_conversational_messages(hh_project, tmp_path):
    import datasets

    _, originals = hh_project
    result = export(tmp_path, "hh.jsonl", project="hh", format="trl")
    dataset = datasets.load_dataset("json", data_files=result.path, split="train")
    assert len(dataset) == len(originals)
    originals_by_reply = {o["chosen"].rsplit("\n\nAssistant:", 1)[1].strip(): o for o in originals}
    for row in dataset:
        roles = [message["role"] for message in row["prompt"]]
        assert roles[0] == "user" and roles[-1] == "user"
        assert all(first != second for first, second in zip(roles, roles[1:]))  # turns alternate
        assert [m["role"] for m in row["chosen"]] == ["assistant"] == [m["role"] for m in row["rejected"]]
        original = originals_by_reply[row["chosen"][0]["content"]]
        assert row["prompt"][0]["content"] in original["chosen"]
        assert original["rejected"].rstrip().endswith(row["rejected"][0]["content"])


@pytest.mark.django_db
def test_hf_export_is_a_datasets_folder(hh_project, tmp_path):
    import datasets

    result = export(tmp_path, "hh-dataset", project="hh", format="hf")
    dataset = datasets.load_from_disk(result.path)
    assert len(dataset) == 12 and result.n_rows == 12
    assert {"prompt", "chosen", "rejected", "weight", "confidence", "n_judgments", "id"} <= set(dataset.column_names)
    assert dataset[0]["chosen"][0]["role"] == "assistant"
    # A second export over the first replaces the folder whole.
    again = export(tmp_path, "hh-dataset", project="hh", format="hf", aggregate="none")
    assert len(datasets.load_from_disk(again.path)) == 12


@pytest.mark.django_db
def test_two_dpo_steps_run_on_the_trl_export(hh_project, tmp_path, tiny_model_dir):
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    # given the HH export loaded the way a training script loads it
    result = export(tmp_path, "hh.jsonl", project="hh", format="trl")
    dataset = datasets.load_dataset("json", data_files=result.path, split="train")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    config = DPOConfig(
        output_dir=str(tmp_path / "dpo"),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        max_length=256,
        report_to=[],
        bf16=False,
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        dataloader_num_workers=0,
    )
    # when DPO trains two steps on it
    trainer = DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    output = trainer.train()
    # then it ran both steps with a finite loss and moved the weights
    assert output.global_step == 2 and np.isfinite(output.training_loss)
    changed = [name for name, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[name])]
    assert changed


# --- media, arenas ----------------------------------------------------------------------------


@pytest.fixture
def image_arena(arena_factory, make_user):
    from arena.voting.actions import judge_for_user
    from arena.board.snapshots import record_battle
    from arena.models import Comparison, Judgment, Output

    systems, prompts = arena_factory(modality="image", n_systems=2, n_prompts=3)
    voters = [judge_for_user(make_user(f"voter{i}")) for i in range(2)]
    for prompt in prompts:
        a, b = (Output.objects.get(system=s, prompt=prompt) for s in systems)
        comparison = Comparison.objects.create(prompt=prompt, output_a=a, output_b=b)
        for voter, verdict in zip(voters, ("a", "a")):
            record_battle(Judgment.objects.create(comparison=comparison, judge=voter, verdict=verdict))
    return systems, prompts


@pytest.mark.django_db
@pytest.mark.parametrize("arena", ["all", "main"])
def test_arena_exports_zip_their_media_beside_the_rows(image_arena, tmp_path, arena):
    result = export_dataset(ExportOptions(output=str(tmp_path / "arena.jsonl"), format="trl", arena=arena))
    rows = read_jsonl(result.path)
    assert len(rows) == 3 and result.n_media == 6
    assert result.media_path == str(tmp_path / "arena.jsonl.media.zip")
    with zipfile.ZipFile(result.media_path) as archive:
        names = set(archive.namelist())
        assert len(names) == 6
        for row in rows:
            assert row["chosen_media"] in names and row["rejected_media"] in names
            assert archive.read(row["chosen_media"]).startswith(b"\x89PNG")
    # Provenance rows: voters are accounts, exported only as pseudonyms.
    provenance = export_dataset(ExportOptions(output=str(tmp_path / "j.jsonl"), format="jsonl", arena=arena))
    judgments = read_jsonl(provenance.path)
    assert len(judgments) == 6 and {row["judge_kind"] for row in judgments} == {"human"}
    assert not any("voter" in row["annotator"] for row in judgments)


@pytest.mark.django_db
def test_an_unknown_arena_or_project_is_refused(db, tmp_path):
    from annotation.export import SelectionError

    with pytest.raises(SelectionError, match="no arena named"):
        export_dataset(ExportOptions(output=str(tmp_path / "x"), format="trl", arena="nowhere"))
    with pytest.raises(CommandError, match="no project named"):
        call_command("export_dataset", "--project", "nope", "--format", "trl", "--output", str(tmp_path / "y"))


# --- atomic writes and streaming ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_failed_export_leaves_the_previous_one_untouched(crowd_project, tmp_path, monkeypatch):
    from annotation.export import writers

    target = tmp_path / "rows.jsonl"
    export(tmp_path, "rows.jsonl", format="jsonl")
    before = target.read_bytes()

    class Failing(writers.JsonLinesWriter):
        def write(self, rows):
            super().write(rows)
            raise OSError("disk full")

    monkeypatch.setitem(writers.WRITERS, "jsonl", Failing)
    with pytest.raises(OSError, match="disk full"):
        export(tmp_path, "rows.jsonl", format="jsonl", source="all")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]  # no staging left behind


@pytest.mark.django_db
def test_rows_stream_in_bounded_chunks(crowd_project, tmp_path, monkeypatch):
    from annotation.export import service

    whole = read_jsonl(export(tmp_path, "whole.jsonl", format="jsonl").path)
    monkeypatch.setattr(service, "CHUNK_SIZE", 7)
    progress = []
    result = export_dataset(
        ExportOptions(output=str(tmp_path / "chunked.jsonl"), format="jsonl", project="crowd"),
        progress=lambda done, total: progress.append((done, total)),
    )
    assert read_jsonl(result.path) == whole
    total = len(whole)
    assert progress[-1] == (total, total) and len(progress) == -(-total // 7)
    assert all(done - previous <= 7 for (previous, _), (done, _) in zip([(0, 0)] + progress, progress))


# --- the command, the task, the API and the admin page -------------------------------------------


@pytest.mark.django_db
def test_export_dataset_command(crowd_project, tmp_path):
    out = io.StringIO()
    call_command("export_dataset", "--project", "crowd", "--format", "csv", "--output", str(tmp_path / "x.csv"),
                 "--aggregate", "majority", "--source", "all", stdout=out)  # fmt: skip
    assert out.getvalue().startswith("wrote 181 rows to ")
    assert len(read_rows(tmp_path / "x.csv", "csv")) == 181


@pytest.mark.django_db
def test_the_celery_task_runs_a_job_once_with_progress(crowd_project):
    import pandas as pd

    from annotation.export import jobs
    from annotation.export_tasks import export_dataset_task

    job = jobs.create_job({"format": "parquet", "project": "crowd"}, requested_by="res")
    assert export_dataset_task.apply(args=[job.id]).get() == "succeeded"
    job = jobs.load_job(job.id)
    assert job.result["n_rows"] == 180
    assert job.status == jobs.DONE and job.done == job.total == 180 and job.fraction == 1.0
    assert job.files == {"rows": f"stored:exports/{job.id}/judgments.parquet"}
    with storage.open_stored(job.files["rows"]) as stored:
        assert len(pd.read_parquet(io.BytesIO(stored.read()))) == 180
    finished_at = job.finished_at
    # A redelivered message finds the job finished: it answers with its state and runs nothing.
    assert export_dataset_task.apply(args=[job.id]).get() == "succeeded"
    assert jobs.load_job(job.id).finished_at == finished_at


@pytest.mark.django_db
def test_a_failing_task_marks_its_job_failed(crowd_project, monkeypatch):
    from annotation import export_tasks
    from annotation.export import jobs, service

    def broken(options, progress=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(service, "export_dataset", broken)
    job = jobs.create_job({"format": "trl", "project": "crowd"})
    export_tasks.export_dataset_task.apply(args=[job.id])
    job = jobs.load_job(job.id)
    assert job.status == jobs.FAILED and "boom" in job.error


@pytest.fixture
def eager_exports(monkeypatch):
    from annotation.export_tasks import export_dataset_task

    monkeypatch.setattr(export_dataset_task, "delay", lambda job_id: export_dataset_task.apply(args=[job_id]))


@pytest.mark.django_db
def test_export_api(
    crowd_project, researcher, annotator, client_for, eager_exports, django_capture_on_commit_callbacks
):
    client = client_for(researcher)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/annotation/exports/", {"format": "trl", "project": "crowd"}, format="json")
    assert response.status_code == 202, response.content
    job_url = response.json()["url"]
    status = client.get(job_url).json()
    assert status["status"] == "succeeded" and status["result"]["n_rows"] > 0
    assert "path" not in status["result"] and "output" not in status["options"]  # server paths stay private
    download = client.get(status["download"]["rows"])
    assert download.status_code == 200
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert len(lines) == status["result"]["n_rows"]
    assert client.get("/api/annotation/exports/").json()["results"][0]["id"] == status["id"]
    # Bad scope: a 400 naming the problem. Annotators: no access at all.
    bad = client.post("/api/annotation/exports/", {"format": "trl", "project": "nope"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid"
    assert client_for(annotator).get("/api/annotation/exports/").status_code == 403
    assert client_for(annotator).get(status["download"]["rows"]).status_code == 403


@pytest.mark.django_db
def test_admin_export_page(
    crowd_project, researcher, annotator, client, eager_exports, django_capture_on_commit_callbacks
):
    client.force_login(researcher)
    page = client.get("/projects/export/", {"target": "project:crowd"})
    assert page.status_code == 200 and b'value="project:crowd" selected' in page.content
    with django_capture_on_commit_callbacks(execute=True):
        posted = client.post("/projects/export/", {"target": "project:crowd", "format": "csv", "aggregate": "majority",
                                                   "source": "human", "min_confidence": "0"})  # fmt: skip
    assert posted.status_code == 302
    page = client.get("/projects/export/")
    assert b"succeeded" in page.content and b"part=rows" in page.content
    from annotation.export import jobs

    job = jobs.recent_jobs()[0]
    download = client.get(f"/projects/export/?download={job.id}&part=rows")
    assert download.status_code == 200 and b"judgment_id" in b"".join(download.streaming_content)
    client.force_login(annotator)
    assert client.get("/projects/export/").status_code == 403

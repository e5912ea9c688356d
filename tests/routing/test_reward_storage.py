"""A reward model stored by a training host (arena.storage) judges on another host, which
copies it from the storage into its own model cache."""

import shutil
from pathlib import Path

import pytest

from arena import storage
from routing.judges import JudgeError
from routing.reward import reward_model_dir

from .test_integration_support import reward_run  # noqa: F401 - fixture


def test_a_stored_reward_model_is_opened_from_another_hosts_cache(reward_run, settings, tmp_path):  # noqa: F811
    # given a reward run stored as the training worker stores it, its local folders gone
    settings.STORAGES = {**settings.STORAGES, "duet": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "shared")},
    }}  # fmt: skip
    output_dir = Path(reward_run.artifacts["output_dir"])
    shutil.copyfile(output_dir / "dataset.jsonl", output_dir / "reward_model" / "dataset.jsonl")
    reward_run.artifacts = {"model": storage.store_folder(output_dir / "reward_model", f"tuned/run-{reward_run.pk}")}
    reward_run.save(update_fields=["artifacts"])
    shutil.rmtree(output_dir)
    # when a judging worker with its own cache opens it
    settings.MODEL_CACHE_DIR = tmp_path / "judging-host"
    directory, conversational = reward_model_dir(reward_run.pk)
    # then it reads the copy in its cache, trained on plain-text prompts
    assert directory == tmp_path / "judging-host" / "stored" / "tuned" / f"run-{reward_run.pk}"
    assert (directory / "config.json").is_file() and conversational is False
    # and a run whose stored model is gone says so
    shutil.rmtree(tmp_path / "shared")
    shutil.rmtree(tmp_path / "judging-host")
    with pytest.raises(JudgeError, match="not in the storage"):
        reward_model_dir(reward_run.pk)

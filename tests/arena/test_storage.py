"""Tuned models in the storage every host reaches (arena.storage): stored by name, opened on
another host through its own local cache, local folders of older runs opened where they lie."""

import json
import threading

import pytest

from arena import storage
from arena.providers import localmodel


@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "merged"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "tiny"}))
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (folder / "sub" / "tokenizer.json").write_text("{}")
    return folder


@pytest.fixture
def shared_storage(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "duet": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "shared")},
    }}  # fmt: skip
    return tmp_path / "shared"


def test_a_stored_folder_is_opened_on_another_host_from_its_own_cache(model_folder, shared_storage, settings, tmp_path):
    # given a folder stored by the training host
    ref = storage.store_folder(model_folder, "tuned/run-7")
    assert ref == "stored:tuned/run-7"
    assert (shared_storage / "tuned/run-7/model.safetensors").is_file()
    # when another host, whose model cache is its own and empty, opens it
    settings.MODEL_CACHE_DIR = tmp_path / "other-host-cache"
    opened = localmodel.resolve_model_dir(ref)
    # then it is a complete copy in that cache, byte for byte
    assert opened == tmp_path / "other-host-cache" / "stored" / "tuned" / "run-7"
    for relative in ("config.json", "model.safetensors", "sub/tokenizer.json"):
        assert (opened / relative).read_bytes() == (model_folder / relative).read_bytes()
    # and a second open reads that copy, not the storage
    (shared_storage / "tuned/run-7/config.json").unlink()
    assert storage.open_folder(ref) == opened


def test_storing_again_replaces_the_files_under_the_same_names(model_folder, shared_storage):
    storage.store_folder(model_folder, "tuned/run-8")
    (model_folder / "config.json").write_text('{"model_type": "newer"}')
    assert storage.store_folder(model_folder, "tuned/run-8") == "stored:tuned/run-8"
    assert json.loads((shared_storage / "tuned/run-8/config.json").read_text()) == {"model_type": "newer"}
    assert sorted(p.name for p in (shared_storage / "tuned/run-8").iterdir()) == [
        "config.json", "duet-manifest.json", "model.safetensors", "sub"]


def test_a_folder_stored_halfway_is_refused_with_its_name(model_folder, shared_storage, settings, tmp_path):
    # given a store that stopped before its manifest (the training host died)
    storage.store_folder(model_folder, "tuned/run-9")
    (shared_storage / "tuned/run-9" / storage.MANIFEST).unlink()
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    # then opening it names the problem, and leaves nothing half-made in the cache
    with pytest.raises(localmodel.LocalModelError, match="stored:tuned/run-9.*never completely stored"):
        localmodel.resolve_model_dir("stored:tuned/run-9")
    assert not (tmp_path / "cache" / "stored" / "tuned" / "run-9").exists()
    with pytest.raises(storage.StoredFolderError, match="not a stored folder"):
        storage.open_folder("stored:../etc")


def test_processes_opening_at_once_all_get_the_complete_copy(model_folder, shared_storage, settings, tmp_path):
    storage.store_folder(model_folder, "tuned/run-10")
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    opened, errors = [], []

    def open_it():
        try:
            opened.append(storage.open_folder("stored:tuned/run-10"))
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(opened)) == 1
    assert (opened[0] / "sub" / "tokenizer.json").read_text() == "{}"
    assert [p.name for p in opened[0].parent.iterdir()] == ["run-10"]  # no partial copies left


def test_a_local_folder_of_an_older_run_is_opened_where_it_lies(model_folder):
    assert localmodel.resolve_model_dir(str(model_folder)) == model_folder

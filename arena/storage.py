"""Tuned models in the storage every host reaches (``STORAGES["duet"]``: a folder under
``DUET_VAR_DIR`` by default, a shared folder or an object store on several hosts).

A training worker stores the model it made (`store_folder`) and registers the system with
the reference it gets back, ``"stored:tuned/run-12"``, never a path of its own host. A
generation worker on any host opens it (`open_folder`): the first use copies it into its
local model cache (``DUET_MODEL_CACHE``), later ones read that copy. A system registered
with a local folder, as runs made before this were, is opened where it lies.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages

PREFIX = "stored:"
# Written last when storing and when copying out: a folder without it is incomplete.
MANIFEST = "duet-manifest.json"


class StoredFolderError(RuntimeError):
    """A stored folder is missing or incomplete."""


def storage():
    return storages["duet"]


def is_stored(ref: str) -> bool:
    return ref.startswith(PREFIX)


def store_folder(folder: Path, name: str) -> str:
    """Copy every file under `folder` into the storage under `name` (replacing what was
    there); returns the reference to register (``"stored:<name>"``)."""
    folder, store = Path(folder), storage()
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    if not files:
        raise StoredFolderError(f"{folder} holds no files to store")
    manifest = {}
    for path in files:
        relative = path.relative_to(folder).as_posix()
        target = f"{name}/{relative}"
        if store.exists(target):  # a storage never overwrites: it would pick another name
            store.delete(target)
        with path.open("rb") as handle:
            saved = store.save(target, File(handle, name=path.name))
        if saved != target:
            raise StoredFolderError(f"the storage saved {target!r} as {saved!r}")
        manifest[relative] = path.stat().st_size
    if store.exists(f"{name}/{MANIFEST}"):
        store.delete(f"{name}/{MANIFEST}")
    store.save(f"{name}/{MANIFEST}", _json_file(manifest))
    return PREFIX + name


def open_folder(ref: str) -> Path:
    """The local folder of a stored reference, copied out of the storage on first use (a
    copy made by another process at the same time is used as it is)."""
    if not is_stored(ref):
        return Path(ref).expanduser()
    name = ref[len(PREFIX):].strip("/")
    if not name or ".." in name.split("/"):
        raise StoredFolderError(f"not a stored folder: {ref!r}")
    local = Path(settings.MODEL_CACHE_DIR) / "stored" / name
    if (local / MANIFEST).is_file():
        return local
    store = storage()
    if not store.exists(f"{name}/{MANIFEST}"):
        raise StoredFolderError(f"{ref!r} is not in the storage (or was never completely stored)")
    with store.open(f"{name}/{MANIFEST}", "rb") as handle:
        manifest = json.load(handle)
    local.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{local.name}-", dir=local.parent))
    try:
        for relative, size in manifest.items():
            target = partial / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with store.open(f"{name}/{relative}", "rb") as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, length=1 << 20)
            if target.stat().st_size != size:
                raise StoredFolderError(f"{ref!r}: {relative} is {target.stat().st_size} bytes, stored {size}")
        (partial / MANIFEST).write_text(json.dumps(manifest))
        try:
            os.rename(partial, local)  # atomic; fails when another process got there first
        except OSError:
            if not (local / MANIFEST).is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return local


def _json_file(data: dict) -> File:
    from django.core.files.base import ContentFile

    return ContentFile(json.dumps(data, indent=1).encode(), name=MANIFEST)

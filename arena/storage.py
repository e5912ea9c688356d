"""Tuned models, exports and import uploads in the storage every host reaches
(``STORAGES["duet"]``: a folder under ``DUET_VAR_DIR`` by default, a shared folder or an
object store on several hosts).

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


class StoredFileMissing(StoredFolderError, FileNotFoundError):
    """A stored file is not (or no longer) in the storage."""


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


# --- single files -------------------------------------------------------------------------------


def stored_name(ref: str) -> str:
    """The name in the storage of a ``"stored:<name>"`` reference; refuses anything else
    (a local path, an empty name, a name climbing out with "..")."""
    if not is_stored(ref):
        raise StoredFolderError(f"not a stored reference: {ref!r}")
    name = ref[len(PREFIX):].strip("/")
    if not name or ".." in name.split("/"):
        raise StoredFolderError(f"not a stored file: {ref!r}")
    return name


def store_file(source, name: str) -> str:
    """Store `source` (a local path, or a binary file object read from its start) under
    `name`, replacing what was there; returns its reference, ``"stored:<name>"``."""
    name = stored_name(PREFIX + name)
    store = storage()
    if store.exists(name):  # a storage never overwrites: it would pick another name
        store.delete(name)
    if isinstance(source, (str, Path)):
        with Path(source).open("rb") as handle:
            saved = store.save(name, File(handle, name=Path(name).name))
    else:
        source.seek(0)
        saved = store.save(name, File(source, name=Path(name).name))
    if saved != name:
        store.delete(saved)
        raise StoredFolderError(f"the storage saved {name!r} as {saved!r}")
    return PREFIX + name


def open_stored(ref: str):
    """The stored file, open for binary reading (the caller closes it). StoredFileMissing
    when it is not in the storage."""
    name, store = stored_name(ref), storage()
    try:
        if not store.exists(name):
            raise StoredFileMissing(f"{ref!r} is no longer in the storage")
        return store.open(name, "rb")
    except FileNotFoundError as missing:  # deleted between the check and the open
        raise StoredFileMissing(f"{ref!r} is no longer in the storage") from missing


def copy_stored(ref: str, target: Path) -> Path:
    """Copy a stored file to the local path `target` (a worker reads local files)."""
    with open_stored(ref) as source, Path(target).open("wb") as sink:
        shutil.copyfileobj(source, sink, length=1 << 20)
    return Path(target)


def delete_stored(ref: str) -> bool:
    """Delete a stored file; False when it was not there."""
    name, store = stored_name(ref), storage()
    if not store.exists(name):
        return False
    store.delete(name)
    return True


def list_files(prefix: str) -> list[str]:
    """The names of every file under the folder `prefix` of the storage, sorted ([] when
    there is no such folder)."""
    store, names, folders = storage(), [], [prefix.strip("/")]
    while folders:
        folder = folders.pop()
        try:
            children, files = store.listdir(folder)
        except FileNotFoundError:
            continue
        names.extend(f"{folder}/{name}" for name in files)
        folders.extend(f"{folder}/{name}" for name in children)
    return sorted(names)


def _json_file(data: dict) -> File:
    from django.core.files.base import ContentFile

    return ContentFile(json.dumps(data, indent=1).encode(), name=MANIFEST)

"""Background export jobs: one folder per job under the export root, holding the job's
state (`job.json`) and its files.

State lives beside the files rather than in a table because the two must travel together:
on several machines the export root is shared storage (like the media root), so whichever
worker writes the export, every web process can report on it and serve it. Every write
replaces `job.json` atomically, and a worker claims a job by creating a marker file with
O_EXCL, so two workers given the same job (a redelivered message) never both run it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from .options import ExportOptions

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
FILE_NAMES = {"trl": "preferences.jsonl", "jsonl": "judgments.jsonl", "csv": "judgments.csv",
              "parquet": "judgments.parquet", "hf": "dataset"}  # fmt: skip
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def export_root() -> Path:
    return Path(getattr(settings, "ANNOTATION_EXPORT_DIR", settings.VAR_DIR / "exports"))


@dataclass
class ExportJob:
    id: str
    options: dict  # ExportOptions.to_dict()
    status: str = QUEUED
    done: int = 0
    total: int = 0
    result: dict | None = None
    error: str = ""
    requested_by: str = ""
    created_at: str = ""
    updated_at: str = ""
    files: dict = field(default_factory=dict)  # part name ("rows", "media") -> path

    @property
    def folder(self) -> Path:
        return export_root() / self.id

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else (1.0 if self.status == DONE else 0.0)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["progress"] = round(self.progress, 4)
        data["options"] = {k: v for k, v in self.options.items() if k != "output"}  # server paths stay private
        data.pop("files")
        data["parts"] = sorted(self.files)
        if data["result"]:
            data["result"] = {k: v for k, v in data["result"].items() if k not in ("path", "media_path")}
        return data


def create_job(options: dict, requested_by: str = "") -> ExportJob:
    """A queued job for `options` (ExportOptions fields without `output`, which the job
    chooses inside its own folder). Raises ExportError for bad options."""
    job_id = uuid.uuid4().hex
    folder = export_root() / job_id
    output = folder / FILE_NAMES.get(options.get("format"), "export")
    validated = ExportOptions.from_dict({**options, "output": str(output)})
    folder.mkdir(parents=True)
    now = timezone.now().isoformat()
    job = ExportJob(id=job_id, options=validated.to_dict(), requested_by=requested_by, created_at=now, updated_at=now)
    _save(job)
    return job


def load_job(job_id: str) -> ExportJob | None:
    if not _JOB_ID.match(job_id or ""):
        return None  # also keeps a crafted id from naming a path outside the export root
    try:
        with open(export_root() / job_id / "job.json", encoding="utf-8") as handle:
            return ExportJob(**json.load(handle))
    except FileNotFoundError:
        return None


def recent_jobs(limit: int = 20) -> list[ExportJob]:
    root = export_root()
    if not root.is_dir():
        return []
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    jobs = (load_job(folder.name) for folder in folders[: limit * 2])
    return [job for job in jobs if job is not None][:limit]


def claim_job(job_id: str) -> ExportJob | None:
    """Mark a queued job running; None when it is unknown or another worker has it."""
    job = load_job(job_id)
    if job is None or job.status != QUEUED:
        return None
    try:
        os.close(os.open(job.folder / "claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return None
    return update_job(job, status=RUNNING)


def update_job(job: ExportJob, **changes) -> ExportJob:
    for name, value in changes.items():
        setattr(job, name, value)
    job.updated_at = timezone.now().isoformat()
    _save(job)
    return job


def finish_job(job: ExportJob, result: dict) -> ExportJob:
    """Record a finished export; an `hf` folder is also zipped, so it downloads as one file."""
    files = {"rows": result["path"]}
    if job.options["format"] == "hf":
        files["rows"] = shutil.make_archive(result["path"], "zip", root_dir=result["path"])
    if result.get("media_path"):
        files["media"] = result["media_path"]
    return update_job(job, status=DONE, result=result, files=files, done=job.total or job.done)


def _save(job: ExportJob) -> None:
    path = job.folder / "job.json"
    temporary = path.with_name(f"job.json.{uuid.uuid4().hex}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(asdict(job), handle)
    os.replace(temporary, path)

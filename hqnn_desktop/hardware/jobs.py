"""Hardware runs on disk: one JSON record per run in ``data_dir()/jobs``, written atomically.

A run is one pack on one backend for a set of images: one runtime job per
batch. Its record keeps what is needed to finish the work later, without the
images or the backbone: the job ids, each job's status and (once fetched) its
<Z> values, the options, and the local half of the rerun (codes, simulated <Z>,
truth: :class:`~.rerun.LocalPass`). So a run survives a restart, its jobs can
be fetched days later, and its report is rebuilt from the record alone.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.paths import data_dir
from ..core.storage import atomic_write_json

FINAL = ("DONE", "CANCELLED", "ERROR")


@dataclass
class JobEntry:
    """One runtime job (one batch of images)."""

    job_id: str
    start: int
    stop: int
    status: str = "QUEUED"
    z: list | None = None
    error: str | None = None


@dataclass
class RunRecord:
    """One hardware run: pack x backend x images, and its jobs."""

    run_id: str
    pack: str
    backend: str
    backend_kind: str
    created: float
    options: dict
    inputs: dict
    jobs: list[JobEntry] = field(default_factory=list)
    n_jobs_planned: int = 0
    pack_path: str = ""
    #: The user stopped it before every batch was submitted.
    stopped: bool = False

    @property
    def n_images(self) -> int:
        return len(self.inputs.get("paths", []))

    @property
    def status(self) -> str:
        """SUBMITTING until every batch is queued (STOPPED if the user stopped that), then the least
        advanced job's status."""
        if len(self.jobs) < self.n_jobs_planned:
            return "STOPPED" if self.stopped else "SUBMITTING"
        states = {j.status for j in self.jobs}
        for s in ("ERROR", "CANCELLED", "QUEUED", "INITIALIZING", "RUNNING", "VALIDATING"):
            if s in states:
                return s
        return "DONE" if states else "EMPTY"

    @property
    def complete(self) -> bool:
        return bool(self.jobs) and len(self.jobs) == self.n_jobs_planned and all(j.z is not None for j in self.jobs)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        jobs = [JobEntry(**j) for j in data.get("jobs", [])]
        record = cls(**{**data, "jobs": jobs})
        if isinstance(record.created, bool) or not isinstance(record.created, (int, float)):
            raise TypeError("its creation time is not a number")
        return record


class DamagedRecord(ValueError):
    """A run record file that cannot be used, with the file named (it stays on disk as it is)."""


class JobStore:
    """The run records in ``folder`` (default ``data_dir()/jobs``)."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else data_dir() / "jobs"
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, run_id: str) -> Path:
        if not run_id.replace("-", "").isalnum():
            raise KeyError(run_id)
        return self.folder / f"{run_id}.json"

    def new(self, pack: str, backend: str, backend_kind: str, options: dict, inputs: dict,
            n_jobs: int, pack_path: str = "") -> RunRecord:
        record = RunRecord(run_id=uuid.uuid4().hex[:12], pack=pack, backend=backend, backend_kind=backend_kind,
                           created=time.time(), options=options, inputs=inputs, n_jobs_planned=n_jobs,
                           pack_path=pack_path)
        self.save(record)
        return record

    def save(self, record: RunRecord) -> None:
        atomic_write_json(self._path(record.run_id), record.to_dict())

    def get(self, run_id: str) -> RunRecord:
        """The record of ``run_id`` (a run id, or the id of one of its jobs)."""
        path = self._path(run_id)
        if path.exists():
            return self._read(path)
        for record in self.all():
            if any(j.job_id == run_id for j in record.jobs):
                return record
        raise KeyError(run_id)

    def all(self) -> list[RunRecord]:
        """Every readable record, newest first (a damaged file is skipped, not fatal)."""
        return self.scan()[0]

    def scan(self) -> tuple[list[RunRecord], list[str]]:
        """Every readable record, newest first, and what is wrong with each file that is not one
        (for listings to mention rather than hide)."""
        records, problems = [], []
        for path in sorted(self.folder.glob("*.json")):
            try:
                records.append(self._read(path))
            except DamagedRecord as exc:
                problems.append(str(exc))
        return sorted(records, key=lambda r: r.created, reverse=True), problems

    @staticmethod
    def _read(path: Path) -> RunRecord:
        """The record in ``path``; :class:`DamagedRecord` for anything unusable (a folder, bad JSON,
        JSON of the wrong shape), so that one bad file never hides the other runs."""
        try:
            return RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DamagedRecord(f"The record of hardware run {path.stem} ({path}) is damaged ({exc}).") from exc

    def delete(self, run_id: str) -> None:
        self._path(run_id).unlink(missing_ok=True)

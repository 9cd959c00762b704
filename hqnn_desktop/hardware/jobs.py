"""Hardware runs on disk: one JSON record per run in ``data_dir()/jobs``, written atomically.

A run is one pack on one backend for a set of images: one runtime job per
batch. Its record keeps what is needed to finish the work later, without the
images or the backbone: the job ids, each job's status and (once fetched) its
<Z> values, the options, and the local half of the rerun (codes, simulated <Z>,
truth: :class:`~.rerun.LocalPass`). So a run survives a restart, its jobs can
be fetched days later, and its report is rebuilt from the record alone.
"""

from __future__ import annotations

import datetime
import json
import math
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..core.paths import data_dir
from ..core.storage import atomic_write_json
from ..core.wording import counted
from .options import RunOptions

FINAL = ("DONE", "CANCELLED", "ERROR")


#: The fewest characters of a run id that may stand for it (as git's short commit ids do).
SHORT_ID = 4


class AmbiguousRunId(ValueError):
    """A shortened run id that fits more than one recorded run."""


def is_run_id(text: object) -> bool:
    """Letters, digits and hyphens only: a run id is also its record's file name."""
    return isinstance(text, str) and text.replace("-", "").isalnum()


# What a record's values must be (JSON as written by this version), each with how to say it.
def _whole(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _number(v: object) -> bool:
    """A finite int or float that a float can hold (JSON allows 1e999, NaN and 400-digit integers)."""
    try:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    except OverflowError:
        return False


def _table(v: object) -> bool:
    return (isinstance(v, list) and all(isinstance(row, list) and all(_number(x) for x in row) for row in v)
            and len({len(row) for row in v}) <= 1)


def _time(v: object) -> bool:
    if not _number(v):
        return False
    try:  # listings show it as a date
        datetime.datetime.fromtimestamp(v)
    except (OverflowError, OSError, ValueError):  # beyond the dates this computer can show
        return False
    return True


ID = (is_run_id, "a run id of letters, digits and hyphens")
TEXT = (lambda v: isinstance(v, str), "text")
NOTE = (lambda v: v is None or isinstance(v, str), "text")
COUNT = (_whole, "a whole number of 0 or more")
FLAG = (lambda v: isinstance(v, bool), "true or false")
TIME = (_time, "a time in seconds since 1970")
OBJECT = (lambda v: isinstance(v, dict), "a set of named values")
LIST = (lambda v: isinstance(v, list), "a list")
TEXTS = (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of texts")
COUNTS = (lambda v: v is None or (isinstance(v, list) and all(_whole(x) for x in v)),
          "a list of whole numbers of 0 or more")
TABLE = (_table, "a table of numbers with rows of equal length")
ROWS = (lambda v: v is None or _table(v), TABLE[1])
_REQUIRED = object()


def _value(data: dict, key: str, words: str, kind: tuple, default: object = _REQUIRED):
    """``data[key]`` when it is of ``kind``; else ValueError saying so in plain words (``words``, such
    as "its backend is", name the value)."""
    if key not in data:
        if default is _REQUIRED:
            raise ValueError(f"{words} missing")
        return default
    test, what = kind
    if not test(data[key]):
        raise ValueError(f"{words} not {what}")
    return data[key]


def _named_values(data: object, cls: type, whose: str) -> dict:
    """``data`` when it is a JSON object holding no field that ``cls`` does not have."""
    if not isinstance(data, dict):
        raise ValueError(f"{whose} is not {OBJECT[1]}")  # noqa: TRY004 - bad content, like bad JSON
    unknown = sorted(map(str, set(data) - {f.name for f in fields(cls)}))
    if unknown:
        raise ValueError(f"{whose} has a field this version does not know: {', '.join(unknown[:3])}")
    return data


@dataclass
class JobEntry:
    """One runtime job (one batch of images)."""

    job_id: str
    start: int
    stop: int
    status: str = "QUEUED"
    z: list | None = None
    error: str | None = None

    @classmethod
    def from_dict(cls, data: object, n: int) -> JobEntry:
        """Job ``n`` (from 1) of a record; ValueError in plain words if any of its values is wrong."""
        its = f"its job {n}"
        data = _named_values(data, cls, its)
        entry = cls(_value(data, "job_id", f"the id of {its} is", TEXT),
                    _value(data, "start", f"the first image of {its} is", COUNT),
                    _value(data, "stop", f"the end of {its} is", COUNT),
                    _value(data, "status", f"the status of {its} is", TEXT, "QUEUED"),
                    _value(data, "z", f"the <Z> values of {its} are", ROWS, None),
                    _value(data, "error", f"the error of {its} is", NOTE, None))
        if entry.stop < entry.start:
            raise ValueError(f"{its} ends (image {entry.stop}) before it starts (image {entry.start})")
        if entry.z is not None and len(entry.z) != entry.stop - entry.start:
            raise ValueError(f"{its} has <Z> values for {len(entry.z)} images, not its {entry.stop - entry.start}")
        return entry


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
    #: The checksum of the pack's heads file when the run was planned, so that a report is never
    #: rebuilt with a pack retrained or replaced since ("" in records from before it was kept).
    heads_sha256: str = ""

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
    def from_dict(cls, data: object) -> RunRecord:
        """The record in ``data`` (a record file's JSON). Every value the record, its jobs and its
        report use is checked here, so that a wrong one is a ValueError in plain words (the file is
        then reported as damaged) rather than a crash of whatever uses it later."""
        data = _named_values(data, cls, "it")
        record = cls(run_id=_value(data, "run_id", "its run id is", ID),
                     pack=_value(data, "pack", "its pack is", TEXT),
                     backend=_value(data, "backend", "its backend is", TEXT),
                     backend_kind=_value(data, "backend_kind", "its backend kind is", TEXT),
                     created=_value(data, "created", "its creation time is", TIME),
                     options=_value(data, "options", "its options are", OBJECT),
                     inputs=_value(data, "inputs", "its inputs are", OBJECT),
                     jobs=[JobEntry.from_dict(j, k) for k, j in
                           enumerate(_value(data, "jobs", "its list of jobs is", LIST, []), 1)],
                     n_jobs_planned=_value(data, "n_jobs_planned", "its number of planned jobs is", COUNT, 0),
                     pack_path=_value(data, "pack_path", "its pack folder is", TEXT, ""),
                     stopped=_value(data, "stopped", "its stopped mark is", FLAG, False),
                     heads_sha256=_value(data, "heads_sha256", "its pack's checksum is", TEXT, ""))
        try:
            RunOptions.from_dict(record.options)
        except ValueError as exc:
            why = str(exc).rstrip(".")
            raise ValueError(f"its options are not usable: {why[:1].lower()}{why[1:]}") from None
        record._check_inputs()
        return record

    def _check_inputs(self) -> None:
        """The local half of the run (what :class:`~.rerun.LocalPass` reads) and how the jobs share its
        images out."""
        inputs = self.inputs
        paths = _value(inputs, "paths", "its list of images is", TEXTS)
        codes = _value(inputs, "codes", "its bottleneck codes are", TABLE)
        tables = [_value(inputs, "sim_z", "its simulated <Z> values are", TABLE)]  # compared with the jobs' <Z>
        truth = _value(inputs, "truth", "its true labels are", COUNTS, None)
        _value(inputs, "unusable", "its list of unusable images is", LIST, [])
        for what, rows in (("bottleneck codes", codes), ("simulated <Z> values", tables[0]), ("true labels", truth)):
            if rows is not None and len(rows) != len(paths):
                raise ValueError(f"it has {len(rows)} {what} for {len(paths)} images")
        end = 0
        for k, job in enumerate(self.jobs, 1):
            if job.start != end or job.stop > len(paths):
                raise ValueError(f"its job {k} is for images {job.start} to {job.stop}, which do not follow on "
                                 f"from its jobs before it (to image {end}) within its {len(paths)} images")
            end = job.stop
            tables.append(job.z or [])
        if self.complete and end != len(paths):
            raise ValueError(f"its jobs hold results for {end} of its {len(paths)} images")
        if len({len(row) for rows in tables for row in rows}) > 1:
            raise ValueError("its simulated and measured <Z> values are not all for the same number of qubits")


class DamagedRecord(ValueError):
    """A run record file that cannot be used, with the file named (it stays on disk as it is)."""


class JobStore:
    """The run records in ``folder`` (default ``data_dir()/jobs``)."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else data_dir() / "jobs"
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, run_id: str) -> Path:
        if not is_run_id(run_id):
            raise KeyError(run_id)
        return self.folder / f"{run_id}.json"

    def new(self, pack: str, backend: str, backend_kind: str, options: dict, inputs: dict,
            n_jobs: int, pack_path: str = "", heads_sha256: str = "") -> RunRecord:
        record = RunRecord(run_id=uuid.uuid4().hex[:12], pack=pack, backend=backend, backend_kind=backend_kind,
                           created=time.time(), options=options, inputs=inputs, n_jobs_planned=n_jobs,
                           pack_path=pack_path, heads_sha256=heads_sha256)
        self.save(record)
        return record

    def save(self, record: RunRecord) -> None:
        atomic_write_json(self._path(record.run_id), record.to_dict())

    def get(self, run_id: str) -> RunRecord:
        """The record of ``run_id``: a run id, its first few characters (at least
        :data:`SHORT_ID`, as a listing is read and retyped), or the id of one of its jobs.
        ``KeyError`` when none matches; :class:`AmbiguousRunId` when a short one fits several."""
        if is_run_id(run_id) and (path := self._path(run_id)).exists():
            return self._read(path)
        records = self.all()
        for record in records:
            if any(j.job_id == run_id for j in record.jobs):
                return record
        starting = [r for r in records if len(run_id) >= SHORT_ID and r.run_id.startswith(run_id.lower())]
        if len(starting) > 1:
            raise AmbiguousRunId(f"{counted(len(starting), 'hardware run')} begin with {run_id} "
                                 f"({', '.join(r.run_id for r in starting)}); type more of the one you mean.")
        if starting:
            return starting[0]
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
        except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise DamagedRecord(f"The record of hardware run {path.stem} ({path}) is damaged ({exc}).") from exc

    def delete(self, run_id: str) -> None:
        self._path(run_id).unlink(missing_ok=True)

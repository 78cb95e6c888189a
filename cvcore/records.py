"""The run record: one typed, schema-versioned description of a run, shared by every page.

A :class:`RunRecord` is what a Train or Transfer run (or a model loaded from a
file) leaves in its user's workspace (:mod:`cvcore.workspace`): what it was,
what it trained and validated on, how far it got, its curves and scores. The
model and the arrays live beside it as ``.keras`` and ``.npz`` files. It is
plain JSON on disk, tagged with :data:`RECORD_TYPE` and :data:`SCHEMA`, so that
a file of another kind or of a newer app is recognised and skipped, never
misread.

Example:
    >>> rec = RunRecord.new("train", name="Run 1", title="Basic CNN on digits", config={"epochs": 2})
    >>> len(rec.id), rec.status
    (32, 'running')
    >>> RunRecord.from_json(rec.to_json()) == rec
    True
"""
from __future__ import annotations

import dataclasses
import json
import re
import time
import uuid
from dataclasses import dataclass, field

from .errors import CvcoreError

__all__ = ["RunRecord", "RecordError", "RECORD_TYPE", "SCHEMA", "KINDS", "STATUSES", "valid_run_id"]

RECORD_TYPE = "convnet-explorer/run"
SCHEMA = 1
KINDS = ("train", "transfer", "upload")
# What a record says of itself. "interrupted" is never written: it is read from a "running" record
# whose job has stopped beating (:meth:`cvcore.workspace.Workspace.status`).
STATUSES = ("running", "finished", "stopped", "failed")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class RecordError(CvcoreError):
    """A run record file is damaged, foreign, or from a newer schema; the message says which."""


def valid_run_id(run_id) -> str:
    """``run_id`` if it is a run id (32 lowercase hex digits, a uuid4), else :class:`RecordError`.

    Ids name folders: anything else (``..``, a slash) is refused before it reaches a path.

    Example:
        >>> valid_run_id("0" * 32) == "0" * 32
        True
        >>> valid_run_id("../x")
        Traceback (most recent call last):
        ...
        cvcore.records.RecordError: `run_id` must be 32 hexadecimal digits; received '../x'.
    """
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise RecordError(f"`run_id` must be 32 hexadecimal digits; received {run_id!r}.")
    return run_id


@dataclass
class RunRecord:
    """One run, as its workspace keeps it.

    Attributes:
        id: a uuid4 in hex, unique across every workspace (the key of every cache of the run's results).
        kind: ``"train"`` (Train page), ``"transfer"`` (Transfer page) or ``"upload"`` (a ``.keras`` file).
        name: the user's name for it ("Run 1" at first; it can be renamed).
        title: what it is ("Basic CNN on scikit-learn digits").
        created: when it began (seconds since the epoch).
        status: ``"running"``, ``"finished"``, ``"stopped"`` or ``"failed"``.
        config: the run's settings, JSON-able (:class:`cvcore.runs.RunConfig` as a dict on the Train page).
        data: what it trained and validated on, exactly: the data set and its files or slices, and a
            fingerprint of the bytes.
        history: lists per epoch (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``), saved each epoch.
        phases: ``[[name, first epoch], ...]`` where a run has phases (fine-tuning).
        evaluation: ``{"accuracy", "loss", "images"}`` once evaluated; the arrays are in ``evaluation.npz``.
        seconds: wall time, once ended.
        error: the plain message of a failed run.
        has_model: whether ``model.keras`` holds the model (after the last saved epoch, or the end).
        extra: page-specific facts, JSON-able (each epoch's seconds; a Transfer run's weights, feature
            extraction, counts).
        updated: when the record was last written.
    """

    id: str
    kind: str
    name: str
    title: str
    created: float
    status: str = "running"
    config: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    phases: list = field(default_factory=list)
    evaluation: dict | None = None
    seconds: float | None = None
    error: str | None = None
    has_model: bool = False
    extra: dict = field(default_factory=dict)
    updated: float = 0.0

    @classmethod
    def new(cls, kind: str, *, name: str, title: str, config: dict | None = None, data: dict | None = None,
            **fields) -> "RunRecord":
        """A fresh record with a new random id, status ``"running"``.

        Raises:
            RecordError: for an unknown ``kind``.
        """
        if kind not in KINDS:
            raise RecordError(f"`kind` must be one of {', '.join(KINDS)}; received {kind!r}.")
        now = time.time()
        return cls(id=uuid.uuid4().hex, kind=kind, name=str(name), title=str(title), created=now,
                   config=dict(config or {}), data=dict(data or {}), updated=now, **fields)

    @property
    def epochs_done(self) -> int:
        """Epochs whose metrics were saved."""
        return len(self.history.get("loss", []))

    def to_json(self) -> str:
        """The record as JSON text, tagged with its type and schema."""
        return json.dumps({"type": RECORD_TYPE, "schema": SCHEMA, **dataclasses.asdict(self)},
                          allow_nan=True, sort_keys=True)

    @classmethod
    def from_json(cls, text) -> "RunRecord":
        """Parse what :meth:`to_json` wrote.

        Raises:
            RecordError: when the text is not JSON, not a run record, from a newer schema, or lacks a field.
        """
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as err:
            raise RecordError(f"not JSON ({err})") from None
        if not isinstance(raw, dict) or raw.get("type") != RECORD_TYPE:
            raise RecordError("not a run record of this app")
        if not isinstance(raw.get("schema"), int) or raw["schema"] > SCHEMA:
            raise RecordError(f"written by a newer version of the app (schema {raw.get('schema')!r}, "
                              f"this one reads {SCHEMA})")
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in raw.items() if k in names}
        try:
            rec = cls(**fields)
            valid_run_id(rec.id)
        except TypeError as err:
            raise RecordError(f"a field is missing ({err})") from None
        if rec.kind not in KINDS or rec.status not in STATUSES:
            raise RecordError(f"unknown kind {rec.kind!r} or status {rec.status!r}")
        return rec

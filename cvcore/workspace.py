"""Each user's lasting workspace on disk: runs, models, results and uploads, and nothing of anyone else's.

What a user makes belongs to a workspace folder under the store's root
(``$CVCORE_STATE_DIR/workspaces``), not to a browser session's memory, so a
reload or a server restart loses nothing, and several page servers can share
one store. Who owns a workspace decides its name:

* a signed-in user: :meth:`Store.user`, from the ID token's issuer and subject
  (never the e-mail), hashed, so the same person finds the same workspace from
  any browser;
* anyone else: :meth:`Store.anonymous`, from an unguessable token (192 random
  bits, :func:`new_token`) that the app keeps in the page's URL. Only a hash of
  the token names the folder, so a listing of the store reveals no link.

Formats, no pickle anywhere: run records are schema-versioned JSON
(:class:`cvcore.records.RunRecord`), arrays are ``.npz`` read with
``allow_pickle=False``, models are ``.keras`` files loaded in Keras' safe mode.
Every write goes to a temporary file in the same folder and is renamed over the
old one (:func:`atomic_write`), so a crash or a full disk mid-write leaves the
old file or the new one, never half of one. A damaged or foreign file is
reported and skipped.

A running job touches its run's heartbeat file; a "running" record whose
heartbeat is older than :data:`STALE_AFTER_S` reads as interrupted. Nothing is
rewritten at start-up, so a page server that starts never changes a run that
another server's job is still writing.

Shared, read-only things (the demo data sets, the feature cache) live in
:func:`state_dir`, outside every workspace.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

from .errors import CvcoreError
from .records import RecordError, RunRecord, valid_run_id

__all__ = [
    "Store", "Workspace", "StoreError", "QuotaExceededError", "new_token", "state_dir", "store_root",
    "folder_bytes", "atomic_write", "DEFAULT_QUOTA_BYTES", "DEFAULT_TTL_DAYS", "STALE_AFTER_S",
]

DEFAULT_QUOTA_BYTES = 2 * 1024**3
DEFAULT_TTL_DAYS = 30.0
STALE_AFTER_S = 60.0  # a running job beats every few seconds; a minute of silence means it is gone
BEAT_EVERY_S = 5.0
_META = "workspace.json"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,128}$")  # at least 22 url-safe characters: 128 bits or more
_ANON, _USER = "a-", "u-"


class StoreError(CvcoreError):
    """A workspace cannot be read or written as asked; the message says why and what to do."""


class QuotaExceededError(StoreError):
    """The workspace is full. ``used`` and ``quota`` are in bytes."""

    def __init__(self, used: int, quota: int, needed: int = 0):
        self.used, self.quota, self.needed = int(used), int(quota), int(needed)
        super().__init__(
            f"Your workspace is full: {_size(self.used)} used of {_size(self.quota)}"
            + (f", and this needs about {_size(self.needed)} more" if self.needed else "")
            + ". Delete runs or uploads you no longer need, then try again.")


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def state_dir() -> Path:
    """The app's state folder: ``$CVCORE_STATE_DIR``, else ``~/.cache/convnet-explorer``."""
    path = Path(os.environ.get("CVCORE_STATE_DIR") or Path.home() / ".cache" / "convnet-explorer")
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_root() -> Path:
    """Where the workspaces live: ``$CVCORE_WORKSPACE_DIR``, else ``<state dir>/workspaces``."""
    configured = os.environ.get("CVCORE_WORKSPACE_DIR")
    return Path(configured) if configured else state_dir() / "workspaces"


def new_token() -> str:
    """A new anonymous workspace token: 192 random bits, URL-safe.

    Example:
        >>> len(new_token()) >= 22 and new_token() != new_token()
        True
    """
    return secrets.token_urlsafe(24)


def folder_bytes(path) -> int:
    """Bytes of the files under ``path`` (links not followed)."""
    total = 0
    for dirpath, _, filenames in os.walk(path, followlinks=False):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` all at once: a temporary file beside it, flushed, then renamed over it.

    Raises:
        StoreError: when the disk is full or the folder cannot be written; the old file, if any, is kept.

    Example:
        >>> p = Path(tempfile.mkdtemp()) / "a.json"
        >>> atomic_write(p, b"{}"); p.read_bytes()
        b'{}'
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StoreError(f"Could not save {path.name} ({err.strerror or err}); nothing was changed. "
                         "If the disk is full, tell the operator.") from None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]


class Store:
    """Every user's workspace, under one root folder shared by all page servers.

    Args:
        root: the folder; :func:`store_root` by default.
        quota_bytes: each workspace's quota; ``$CVCORE_WORKSPACE_QUOTA_MB`` or 2 GiB.
        ttl_days: anonymous workspaces unused this long are swept; ``$CVCORE_WORKSPACE_TTL_DAYS`` or 30.

    Example:
        >>> store = Store(tempfile.mkdtemp())
        >>> token = new_token()
        >>> store.anonymous(token).path == store.anonymous(token).path
        True
        >>> store.user("https://id.example", "alice").kind
        'user'
    """

    def __init__(self, root=None, *, quota_bytes: int | None = None, ttl_days: float | None = None):
        self.root = Path(root) if root is not None else store_root()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if quota_bytes is None:
            mb = os.environ.get("CVCORE_WORKSPACE_QUOTA_MB")
            quota_bytes = int(float(mb) * 1024**2) if mb else DEFAULT_QUOTA_BYTES
        self.quota_bytes = int(quota_bytes)
        self.ttl_days = float(ttl_days if ttl_days is not None
                              else os.environ.get("CVCORE_WORKSPACE_TTL_DAYS", DEFAULT_TTL_DAYS))

    def anonymous(self, token: str) -> "Workspace":
        """The workspace of an anonymous token (made on first use).

        Raises:
            StoreError: when ``token`` is not a token this app makes.
        """
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise StoreError("This workspace link is not valid (its token is malformed). "
                             "Open the app without it to start a new workspace.")
        return self._open(_ANON + _digest("anonymous", token), "anonymous")

    def user(self, issuer: str, subject: str) -> "Workspace":
        """The workspace of a signed-in user, by the ID token's issuer and subject (made on first use).

        Raises:
            StoreError: when either is empty.
        """
        if not issuer or not subject:
            raise StoreError(f"A signed-in user needs an issuer and a subject; received {issuer!r}, {subject!r}.")
        return self._open(_USER + _digest("user", str(issuer), str(subject)), "user")

    def _open(self, name: str, kind: str) -> "Workspace":
        path = self.root / name
        if not path.is_dir():
            # The store's own folder may have been removed under a running server (a clean-up): made again.
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.mkdir(mode=0o700, exist_ok=True)
            meta = path / _META
            if not meta.exists():
                atomic_write(meta, json.dumps({"schema": 1, "kind": kind, "created": time.time()}).encode())
        ws = Workspace(path, kind=kind, quota_bytes=self.quota_bytes)
        ws.touch()
        return ws

    def workspaces(self) -> list["Workspace"]:
        """Every workspace in the store (for the operator)."""
        out = []
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir() and not entry.is_symlink() and entry.name[:2] in (_ANON, _USER):
                out.append(Workspace(entry, kind="user" if entry.name.startswith(_USER) else "anonymous",
                                     quota_bytes=self.quota_bytes))
        return out

    def sweep(self, *, now: float | None = None) -> list[Path]:
        """Remove anonymous workspaces unused for :attr:`ttl_days`; a signed-in user's is never removed here.

        Returns:
            The folders removed.
        """
        now = time.time() if now is None else now
        removed = []
        for ws in self.workspaces():
            if ws.kind == "anonymous" and now - ws.last_used() > self.ttl_days * 86400:
                shutil.rmtree(ws.path, ignore_errors=True)
                removed.append(ws.path)
        return removed


class Workspace:
    """One user's folder: runs (``runs/<id>/``) and files (``files/``).

    Args:
        path: the folder (made by :class:`Store`).
        kind: ``"anonymous"`` or ``"user"``.
        quota_bytes: the most bytes it may hold.

    Example:
        >>> ws = Store(tempfile.mkdtemp()).anonymous(new_token())
        >>> rec = ws.new_run("train", name="Run 1", title="a test")
        >>> rec.history = {"loss": [1.0, 0.5]}; ws.save_run(rec)
        >>> [r.epochs_done for r in ws.runs()], ws.problems()
        ([2], [])
    """

    def __init__(self, path, *, kind: str = "anonymous", quota_bytes: int = DEFAULT_QUOTA_BYTES):
        self.path = Path(path)
        self.kind = kind
        self.quota_bytes = int(quota_bytes)
        self._problems: list[str] = []

    @property
    def id(self) -> str:
        """The folder's name: a hash, never the token or the user's name."""
        return self.path.name

    def ref(self) -> dict:
        """What names this workspace to a job in another process or on another node (JSON-able).

        Example:
            >>> ws = Store(tempfile.mkdtemp()).anonymous(new_token())
            >>> Workspace.from_ref(ws.ref()) == ws
            True
        """
        return {"path": str(self.path), "kind": self.kind, "quota_bytes": self.quota_bytes}

    @classmethod
    def from_ref(cls, ref) -> "Workspace":
        """The workspace :meth:`ref` names.

        Raises:
            StoreError: when ``ref`` is malformed or names no workspace folder (a store not mounted here).
        """
        try:
            path = Path(ref["path"])
            kind, quota = str(ref["kind"]), int(ref["quota_bytes"])
        except (KeyError, TypeError, ValueError):
            raise StoreError(f"A workspace reference needs 'path', 'kind' and 'quota_bytes'; received {ref!r}.") from None
        if path.name[:2] not in (_ANON, _USER) or not (path / _META).is_file():
            raise StoreError(f"No workspace at {str(path)!r} on this machine: is the workspace store mounted here "
                             "(the same path on every node)?")
        return cls(path, kind=kind, quota_bytes=quota)

    @property
    def alive(self) -> bool:
        return self.path.is_dir()

    def __eq__(self, other):
        return isinstance(other, Workspace) and other.path == self.path

    def __hash__(self):
        return hash(self.path)

    # ------------------------------------------------------------------ use and room
    def touch(self) -> None:
        """Mark the workspace as used now (the sweep counts from here)."""
        with contextlib.suppress(OSError):
            os.utime(self.path / _META)

    def last_used(self) -> float:
        try:
            return (self.path / _META).stat().st_mtime
        except OSError:
            return self.path.stat().st_mtime

    def used_bytes(self) -> int:
        return folder_bytes(self.path)

    def room_left(self) -> int:
        """Bytes it may still take (its quota less what it holds)."""
        return max(0, self.quota_bytes - self.used_bytes())

    def ensure_room(self, needed: int = 0) -> None:
        """Raise :class:`QuotaExceededError` unless ``needed`` more bytes fit in the quota."""
        used = self.used_bytes()
        if used + int(needed) > self.quota_bytes:
            raise QuotaExceededError(used, self.quota_bytes, needed)

    # ------------------------------------------------------------------ files
    def new_folder(self, prefix: str) -> Path:
        """A new, empty folder under ``files/``, named ``<prefix>-<random>``."""
        if not self.alive:
            raise StoreError("This workspace was removed (unused too long); reload the page to start a new one.")
        files = self.path / "files"
        files.mkdir(exist_ok=True, mode=0o700)
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in prefix)[:40] or "folder"
        return Path(tempfile.mkdtemp(prefix=f"{safe}-", dir=files))

    def remove(self, folder) -> None:
        """Remove a folder inside the workspace (and nothing outside it)."""
        folder = Path(folder).resolve()
        if self.path.resolve() not in folder.parents:
            raise StoreError(f"{str(folder)!r} is not inside this workspace.")
        shutil.rmtree(folder, ignore_errors=True)

    def write_json(self, name: str, value) -> None:
        """Keep a small JSON document (the current data set, a page's choices) under ``name``."""
        atomic_write(self._doc(name), json.dumps(value).encode())

    def read_json(self, name: str, default=None):
        """What :meth:`write_json` kept, or ``default`` when there is none or it is damaged."""
        try:
            return json.loads(self._doc(name).read_text())
        except (OSError, ValueError):
            return default

    def _doc(self, name: str) -> Path:
        if not re.match(r"^[a-z0-9_-]{1,40}$", name):
            raise StoreError(f"`name` must be 1-40 lowercase letters, digits, '-' or '_'; received {name!r}.")
        return self.path / f"{name}.json"

    # ------------------------------------------------------------------ runs
    def _run_dir(self, run_id: str) -> Path:
        return self.path / "runs" / valid_run_id(run_id)

    def new_run(self, kind: str, *, name: str, title: str, config: dict | None = None, data: dict | None = None,
                **fields) -> RunRecord:
        """Start a run's record (status ``"running"``, heartbeat now) and return it.

        Raises:
            QuotaExceededError: when the workspace is full.
        """
        self.ensure_room()
        rec = RunRecord.new(kind, name=name, title=title, config=config, data=data, **fields)
        folder = self._run_dir(rec.id)
        folder.mkdir(parents=True, mode=0o700)
        self.beat(rec.id)
        self.save_run(rec)
        return rec

    def save_run(self, rec: RunRecord) -> None:
        """Write ``rec`` (atomically)."""
        rec.updated = time.time()
        folder = self._run_dir(rec.id)
        if not folder.is_dir():
            raise StoreError(f"Run {rec.name!r} was deleted.")
        atomic_write(folder / "run.json", rec.to_json().encode())

    def run(self, run_id: str) -> RunRecord:
        """The record of ``run_id``.

        Raises:
            StoreError: when there is no such run here, or its record is damaged.
        """
        path = self._run_dir(run_id) / "run.json"
        try:
            text = path.read_bytes()
        except OSError:
            raise StoreError(f"There is no run {run_id} in this workspace.") from None
        try:
            return RunRecord.from_json(text)
        except RecordError as err:
            raise StoreError(f"The record of run {run_id} cannot be read: {err}.") from None

    def runs(self, kind=None) -> list[RunRecord]:
        """Every readable run, oldest first (of ``kind``, a name or a tuple of names, when given).

        Damaged or foreign records are skipped; :meth:`problems` says which and why.
        """
        kinds = (kind,) if isinstance(kind, str) else tuple(kind) if kind else None
        out, problems = [], []
        folder = self.path / "runs"
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            if entry.name.startswith("."):
                continue  # a run being deleted
            try:
                rec = self.run(entry.name)
            except (StoreError, RecordError) as err:
                if entry.is_dir() and not (entry / "run.json").exists():
                    continue  # a run being created this instant, or a folder left by a delete
                problems.append(f"{entry.name}: {err}")
                continue
            if kinds is None or rec.kind in kinds:
                out.append(rec)
        self._problems = problems
        return sorted(out, key=lambda r: r.created)

    def problems(self) -> list[str]:
        """What the last :meth:`runs` skipped, and why."""
        return list(self._problems)

    def rename_run(self, run_id: str, name: str) -> RunRecord:
        """Give a run a new name (1 to 80 characters)."""
        name = str(name).strip()
        if not 1 <= len(name) <= 80:
            raise StoreError(f"A run's name must be 1 to 80 characters; received {name!r}.")
        rec = self.run(run_id)
        rec.name = name
        self.save_run(rec)
        return rec

    def delete_run(self, run_id: str) -> None:
        """Remove a run and everything it saved."""
        folder = self._run_dir(run_id)
        if folder.is_dir():
            # Renamed away first, so that a reader never sees half of a run.
            trash = folder.with_name(f".deleted-{folder.name}-{secrets.token_hex(4)}")
            os.replace(folder, trash)
            shutil.rmtree(trash, ignore_errors=True)

    # ------------------------------------------------------------------ heartbeat
    def beat(self, run_id: str) -> None:
        """Say that ``run_id``'s job is alive now."""
        path = self._run_dir(run_id) / "heartbeat"
        with contextlib.suppress(OSError):
            path.touch()
            os.utime(path)

    def status(self, rec: RunRecord, *, now: float | None = None, stale_after: float | None = None) -> str:
        """``rec``'s status as it stands: ``"interrupted"`` for a running record whose job stopped beating.

        Args:
            stale_after: seconds of silence after which a job is taken as gone; ``$CVCORE_HEARTBEAT_STALE_S``
                or :data:`STALE_AFTER_S`.
        """
        if rec.status != "running":
            return rec.status
        stale_after = float(stale_after if stale_after is not None
                            else os.environ.get("CVCORE_HEARTBEAT_STALE_S", STALE_AFTER_S))
        now = time.time() if now is None else now
        try:
            last = (self._run_dir(rec.id) / "heartbeat").stat().st_mtime
        except OSError:
            last = rec.updated
        return "interrupted" if now - last > stale_after else "running"

    @contextlib.contextmanager
    def beating(self, run_id: str, every: float = BEAT_EVERY_S):
        """While the block runs, beat ``run_id``'s heartbeat every ``every`` seconds (a daemon thread)."""
        done = threading.Event()

        def loop():
            while not done.wait(every):
                self.beat(run_id)

        self.beat(run_id)
        thread = threading.Thread(target=loop, name=f"heartbeat-{run_id[:8]}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=every + 1)

    # ------------------------------------------------------------------ models and arrays
    def save_model(self, run_id: str, model) -> None:
        """Save a run's Keras model as ``model.keras`` (atomically: a crash keeps the previous one)."""
        folder = self._run_dir(run_id)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".keras", dir=folder)
        os.close(fd)
        try:
            model.save(tmp)
            os.replace(tmp, folder / "model.keras")
        except OSError as err:
            raise StoreError(f"Could not save the model ({err.strerror or err}); the run keeps its previous one. "
                             "If the disk is full, tell the operator.") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def model_path(self, run_id: str) -> Path:
        return self._run_dir(run_id) / "model.keras"

    def load_model(self, run_id: str):
        """A run's model, loaded in Keras' safe mode (a file that would run code is refused).

        Raises:
            StoreError: when it has none, or the file cannot be loaded.
        """
        from .saving import load_model_bytes

        try:
            data = self.model_path(run_id).read_bytes()
        except OSError:
            raise StoreError(f"Run {run_id} has no saved model.") from None
        try:
            return load_model_bytes(data)
        except CvcoreError as err:
            raise StoreError(f"The model of run {run_id} cannot be loaded: {err}") from None

    def save_arrays(self, run_id: str, name: str, **arrays) -> None:
        """Keep numeric arrays as ``<name>.npz`` (no object arrays: they would need pickle)."""
        for key, value in arrays.items():
            if np.asarray(value).dtype == object:
                raise StoreError(f"Array {key!r} holds Python objects; only numbers are kept.")
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        atomic_write(self._run_dir(run_id) / f"{self._doc(name).stem}.npz", buf.getvalue())

    def load_arrays(self, run_id: str, name: str) -> dict:
        """What :meth:`save_arrays` kept, read with ``allow_pickle=False``.

        Raises:
            StoreError: when there is none, or the file is damaged or asks for pickle.
        """
        path = self._run_dir(run_id) / f"{self._doc(name).stem}.npz"
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except FileNotFoundError:
            raise StoreError(f"Run {run_id} has no {name} arrays.") from None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            raise StoreError(f"The {name} arrays of run {run_id} cannot be read: {err}") from None

    # ------------------------------------------------------------------ results of other work
    def _result_path(self, key: str) -> Path:
        return self.path / "results" / f"{hashlib.sha256(str(key).encode()).hexdigest()[:40]}.npz"

    def save_result(self, key: str, **arrays) -> None:
        """Keep what a piece of work made (a gradient-ascent picture, a Score-CAM map) under ``key``
        (any text: what decides the result), as ``.npz`` without pickle.

        Example:
            >>> ws = Store(tempfile.mkdtemp()).anonymous(new_token())
            >>> ws.save_result("cam|run:1|class 3", value=np.ones((2, 2)), stopped=False)
            >>> ws.load_result("cam|run:1|class 3")["value"].shape, ws.load_result("another") is None
            ((2, 2), True)
        """
        for name, value in arrays.items():
            if np.asarray(value).dtype == object:
                raise StoreError(f"Array {name!r} holds Python objects; only numbers are kept.")
        path = self._result_path(key)
        path.parent.mkdir(exist_ok=True, mode=0o700)
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        atomic_write(path, buf.getvalue())

    def load_result(self, key: str):
        """What :meth:`save_result` kept under ``key`` (``{name: array}``), or None when nothing readable is."""
        try:
            with np.load(self._result_path(key), allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            return None

    def run_archive(self, run_id: str, extra: dict | None = None) -> bytes:
        """A zip of the whole run: its record, model, arrays, history (and ``extra`` {file name: text})."""
        rec = self.run(run_id)
        folder = self._run_dir(run_id)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("run.json", rec.to_json())
            zf.writestr("history.json", json.dumps(rec.history, indent=1))
            for path in sorted(folder.iterdir()):
                if path.suffix in (".keras", ".npz") and not path.name.startswith("."):
                    # A .keras file is a zip already: stored as it is (deflating it again took seconds, for nothing).
                    zf.write(path, path.name, zipfile.ZIP_STORED if path.suffix == ".keras" else zipfile.ZIP_DEFLATED)
            for name, text in (extra or {}).items():
                zf.writestr(name, text)
        return buf.getvalue()

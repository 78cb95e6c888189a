"""Private folders for one browser session's files, removed when the session ends.

A teacher's server holds many sessions at once; what one analyst uploads must
never be seen by another, and must not pile up on disk. Each session gets a
folder of its own (owner-only permissions, a random name nobody can guess)
under a base folder (``$CVCORE_UPLOAD_DIR``, else ``<tmp>/convnet-explorer``).
The folder is removed when its :class:`Workspace` object is garbage-collected
(the app keeps it in the session's state, which Streamlit drops when the
session ends), when the process exits, and, as a last resort after a crash, by
:func:`sweep` once it has been idle longer than ``$CVCORE_SESSION_TTL_HOURS``
(default 12) or its process is gone.

Shared, read-only things (the demo data set, the manifests of server folders)
live in :func:`state_dir` instead.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from pathlib import Path

from .errors import CvcoreError

__all__ = ["Workspace", "base_dir", "state_dir", "sweep", "folder_bytes", "DEFAULT_QUOTA_BYTES"]

DEFAULT_QUOTA_BYTES = 2 * 1024**3
_OWNER = ".owner.json"
_swept = threading.Event()


def base_dir() -> Path:
    """Where session folders live: ``$CVCORE_UPLOAD_DIR``, else ``<tmp>/convnet-explorer``."""
    return Path(os.environ.get("CVCORE_UPLOAD_DIR") or Path(tempfile.gettempdir()) / "convnet-explorer")


def state_dir() -> Path:
    """Shared app state (demo data, manifests, caches): ``$CVCORE_STATE_DIR``, else ``~/.cache/convnet-explorer``."""
    path = Path(os.environ.get("CVCORE_STATE_DIR") or Path.home() / ".cache" / "convnet-explorer")
    path.mkdir(parents=True, exist_ok=True)
    return path


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(base=None, *, max_idle_hours: float | None = None) -> list[Path]:
    """Remove session folders left behind: idle too long, or made by a process that is gone.

    Args:
        base: the base folder; :func:`base_dir` by default.
        max_idle_hours: idle time after which a folder goes;
            ``$CVCORE_SESSION_TTL_HOURS`` or 12 by default.

    Returns:
        The folders removed.
    """
    base = Path(base) if base is not None else base_dir()
    if max_idle_hours is None:
        max_idle_hours = float(os.environ.get("CVCORE_SESSION_TTL_HOURS", 12))
    removed = []
    if not base.is_dir():
        return removed
    now = time.time()
    for entry in base.iterdir():
        if not entry.is_dir() or entry.is_symlink() or not entry.name.startswith("session-"):
            continue
        owner = entry / _OWNER
        try:
            info = json.loads(owner.read_text())
            idle = now - owner.stat().st_mtime
            orphan = int(info.get("pid", -1)) != os.getpid() and not _pid_alive(int(info.get("pid", -1)))
        except (OSError, ValueError):
            idle, orphan = now - entry.stat().st_mtime, False
        if orphan or idle > max_idle_hours * 3600:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


class Workspace:
    """One session's private folder.

    Args:
        base: where to create it; :func:`base_dir` by default.
        quota_bytes: the most bytes the session may keep here.

    Example:
        >>> ws = Workspace(base=tempfile.mkdtemp())
        >>> folder = ws.new_folder("upload")
        >>> folder.parent == ws.path, oct(ws.path.stat().st_mode & 0o777)
        (True, '0o700')
        >>> ws.close(); ws.path.exists()
        False
    """

    def __init__(self, base=None, *, quota_bytes: int = DEFAULT_QUOTA_BYTES):
        base = Path(base) if base is not None else base_dir()
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _swept.is_set():  # once per process: clear what crashed processes left behind
            _swept.set()
            sweep(base)
        self.quota_bytes = int(quota_bytes)
        self.path = base / f"session-{secrets.token_hex(16)}"
        self.path.mkdir(mode=0o700)
        (self.path / _OWNER).write_text(json.dumps({"pid": os.getpid(), "created": time.time()}))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def touch(self) -> None:
        """Mark the session as alive (the idle sweep counts from the last touch)."""
        try:
            os.utime(self.path / _OWNER)
        except OSError:
            pass

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and self.path.is_dir()

    def new_folder(self, prefix: str) -> Path:
        """A new, empty folder inside the workspace, named ``<prefix>-<random>``."""
        if not self.alive:
            raise CvcoreError("This session's folder was removed (the session was idle too long); reload the page.")
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in prefix)[:40] or "folder"
        return Path(tempfile.mkdtemp(prefix=f"{safe}-", dir=self.path))

    def remove(self, folder) -> None:
        """Remove a folder made by :meth:`new_folder` (and nothing outside the workspace)."""
        folder = Path(folder).resolve()
        if self.path.resolve() not in folder.parents:
            raise CvcoreError(f"{str(folder)!r} is not inside this session's workspace.")
        shutil.rmtree(folder, ignore_errors=True)

    def used_bytes(self) -> int:
        return folder_bytes(self.path)

    def room_left(self) -> int:
        """Bytes the session may still write (its quota less what it holds)."""
        return max(0, self.quota_bytes - self.used_bytes())

    def close(self) -> None:
        """Remove the folder and everything in it now."""
        self._finalizer()

"""Who is on the class server: each page server publishes its browser sessions to a shared registry.

The registry is a folder in the shared state folder (:func:`sessions_root`: ``$CVCORE_SESSIONS_DIR``, else
``$CVCORE_STATE_DIR/sessions``). Each page server
keeps its own sessions in memory (:meth:`SessionRegistry.touch` on every full script run, which is a
user's action: the pages' polling fragments do not count) and writes them to a file of its own every
few seconds (:meth:`SessionRegistry.publish`), whole or not at all. Readers (the operator's page, the
"class server is full" check) read every page server's file; a file not refreshed for ``stale_s`` is a
page server that has gone, and is ignored.

Only what the operator needs is kept: the session's random id, its workspace's id (a hash, never a token),
a label for the user, the page and two times.

Example:
    >>> import tempfile
    >>> reg = SessionRegistry(tempfile.mkdtemp(), "p1")
    >>> reg.touch("s1", workspace="ws-a", user="anonymous", page="filters", now=100.0)
    >>> reg.publish(now=101.0)
    []
    >>> [s["session"] for s in reg.sessions(now=102.0)], reg.count(now=102.0)
    (['s1'], 1)
    >>> reg.publish(idle_s=60, now=200.0)  # idle for 100 s: its page server closes it
    ['s1']
    >>> reg.count(now=200.0)
    0
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from .errors import CvcoreError
from .workspace import atomic_write

__all__ = ["SessionRegistry", "STALE_S", "sessions_root"]

STALE_S = 15.0  # a page server's file older than this: that page server is gone


def sessions_root() -> Path:
    """The registry's folder: ``$CVCORE_SESSIONS_DIR``, else ``sessions`` in the state folder."""
    from .workspace import state_dir

    return Path(os.environ.get("CVCORE_SESSIONS_DIR") or state_dir() / "sessions")


class SessionRegistry:
    """One page server's view of the registry (see the module's doc).

    Args:
        root: the registry's folder (shared by every page server).
        server: this page server's name (``$CVCORE_PAGE_SERVER``, else the host and pid).
        stale_s: how old another page server's file may be before it no longer counts.

    Raises:
        CvcoreError: ``server`` is empty or has a path separator.
    """

    def __init__(self, root, server: str, *, stale_s: float = STALE_S):
        if not server or "/" in server or server.startswith("."):
            raise CvcoreError(f"A page server's name must be a plain word; received {server!r}.")
        self.root = Path(root)
        self.server = server
        self.stale_s = float(stale_s)
        self._mine: dict[str, dict] = {}
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.root / f"{self.server}.json"

    def touch(self, session: str, *, workspace: str, user: str, page: str, now: float | None = None) -> None:
        """Note a user's action in ``session`` (a full script run)."""
        now = time.time() if now is None else now
        with self._lock:
            entry = self._mine.setdefault(session, {"session": session, "started": now})
            entry.update(workspace=workspace, user=user, page=page, active=now, server=self.server)

    def forget(self, session: str) -> None:
        with self._lock:
            self._mine.pop(session, None)

    def known(self, session: str) -> bool:
        with self._lock:
            return session in self._mine

    def publish(self, *, alive=None, idle_s: float | None = None, now: float | None = None) -> list[str]:
        """Drop this server's closed sessions (``alive(session)`` false) and write the rest.

        Args:
            alive: tells whether a session is still connected; None: all are.
            idle_s: sessions without an action for this long are dropped, and returned, for the caller to close.

        Returns:
            The ids of the sessions dropped for being idle.
        """
        now = time.time() if now is None else now
        with self._lock:
            idle = [s for s, e in self._mine.items() if idle_s is not None and now - e["active"] > idle_s]
            gone = [s for s in self._mine if alive is not None and not alive(s)]
            for s in {*idle, *gone}:
                self._mine.pop(s, None)
            body = {"server": self.server, "pid": os.getpid(), "updated": now, "sessions": list(self._mine.values())}
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.path, json.dumps(body).encode())
        return idle

    def sessions(self, now: float | None = None) -> list[dict]:
        """Every live session on the class server: this server's from memory, the others' from their files."""
        now = time.time() if now is None else now
        with self._lock:
            found = [dict(e) for e in self._mine.values()]
        for path in sorted(self.root.glob("*.json")) if self.root.is_dir() else []:
            if path == self.path:
                continue
            try:
                body = json.loads(path.read_text())
                if now - float(body["updated"]) <= self.stale_s:
                    found.extend(dict(e) for e in body["sessions"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a file being replaced, or one that is not ours: the next read sees it whole
        return found

    def count(self, now: float | None = None) -> int:
        """How many live sessions the class server has."""
        return len(self.sessions(now))

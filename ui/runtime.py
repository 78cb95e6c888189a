"""The page server's process settings that keep every script run cheap.

Streamlit ends every script run, fragment reruns included, with two full garbage collections: its own
(``runner.postScriptGC``, turned off in ``.streamlit/config.toml``) and one inside
``keras.backend.clear_session()``, which it calls whenever Keras is imported, as it is here. With
TensorFlow loaded the heap holds about half a million objects and each collection takes 0.13 s or more
of CPU under the GIL. A Train page polling its job every second then cost the server most of a core,
and every other user's page waited on it (measured with ``py-spy``: 84% of the server's samples were
these two collections while two users trained).

:func:`lighten_script_cleanup` keeps Streamlit's clean-up (Keras' global state and matplotlib's figures
are still reset after each run) without the collection, and freezes what the imports left behind once
TensorFlow has loaded, so that Python's own, automatic collections skip it. Python's generational
collector still frees cycles as it always does.

:func:`send_without_delay` turns Nagle's algorithm off on the server's connections. Streamlit's server
(uvicorn, since 1.66) binds its listening socket with protocol 0, and asyncio sets ``TCP_NODELAY`` only
on sockets whose protocol is ``IPPROTO_TCP``; so a response's body waited for the browser's delayed
acknowledgement of its headers: 44 ms for every request after the first on a connection (measured:
2 ms on a new connection, 44 ms on each reuse, even for ``/_stcore/health``). A new visitor's page
fetches some 80 scripts over 6 connections, and a rerun's messages trail each other on the websocket.
"""
from __future__ import annotations

import gc
import os
import socket
import stat
import sys
import threading

_lock = threading.Lock()
_installed = False
_frozen = False


def _clean_problem_modules_without_collecting() -> None:
    """Streamlit's ``_clean_problem_modules``, less the full collection (``free_memory=False``)."""
    keras = sys.modules.get("keras")
    if keras is not None:
        try:
            keras.backend.clear_session(free_memory=False)
        except Exception:  # noqa: BLE001 - as Streamlit does: a failed clean-up never fails the page
            pass
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:  # noqa: BLE001
            pass
    _freeze_once_loaded()


def _freeze_once_loaded() -> None:
    """After TensorFlow's import has finished (cvcore.device knows the device), collect once and move
    every object left to the permanent generation: later collections no longer walk TensorFlow's."""
    global _frozen
    if _frozen:
        return
    from cvcore import device

    if device.peek() is None:
        return
    with _lock:
        if not _frozen:
            gc.collect()
            gc.freeze()
            _frozen = True


def lighten_script_cleanup() -> bool:
    """Replace Streamlit's end-of-run clean-up with one that does not collect garbage (once per process).

    Returns:
        True when the clean-up is the light one; False when this Streamlit has no such hook (a newer
        version changed it): the app still works, with the slower clean-up.

    Example:
        >>> lighten_script_cleanup()
        True
        >>> from streamlit.runtime.scriptrunner import script_runner
        >>> script_runner._clean_problem_modules is _clean_problem_modules_without_collecting
        True
    """
    global _installed
    from streamlit.runtime.scriptrunner import script_runner

    if not hasattr(script_runner, "_clean_problem_modules"):
        return False
    with _lock:
        if not _installed:
            script_runner._clean_problem_modules = _clean_problem_modules_without_collecting
            _installed = True
    return True


_nodelay_done = False


def _tcp_sockets():
    """This process's TCP sockets, each as a duplicate (closing it leaves the server's own open)."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc (macOS, Windows): nothing to do here
        return
    for fd in fds:
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:  # closed meanwhile, or not a socket Python can wrap
            continue
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            yield sock
        else:
            sock.close()


def send_without_delay(force: bool = False) -> int:
    """Set ``TCP_NODELAY`` on the page server's listening sockets and the connections they accepted.

    On Linux a connection accepted later inherits the option from its listening socket, so this is
    needed once per process. Elsewhere (no ``/proc``) it does nothing.

    Args:
        force: look again even when done before in this process (tests).

    Returns:
        How many sockets were changed (0 when already done).

    Example:
        >>> import socket
        >>> server = socket.socket(socket.AF_INET)  # protocol 0, as Streamlit binds it
        >>> server.bind(("127.0.0.1", 0)); server.listen()
        >>> send_without_delay(force=True) >= 1
        True
        >>> server.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) > 0
        True
        >>> server.close()
    """
    global _nodelay_done
    with _lock:
        if _nodelay_done and not force:
            return 0
        _nodelay_done = True
    sockets = list(_tcp_sockets())
    try:
        listening = [s for s in sockets if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)]
        ports = {s.getsockname()[1] for s in listening}
        changed = 0
        for sock in sockets:
            try:
                if sock in listening or sock.getsockname()[1] in ports:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    changed += 1
            except OSError:  # closed meanwhile
                continue
        return changed
    finally:
        for sock in sockets:
            sock.close()

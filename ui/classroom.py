"""The class server's rules for a page server: who is on it, who may come in, and who is an operator.

* Every full script run (a user's action) notes the session in the shared registry
  (:class:`cvcore.sessions.SessionRegistry`); a thread publishes this page server's sessions every few
  seconds, drops the closed ones, and closes sessions idle for ``$CVCORE_SESSION_IDLE_S`` (their work
  is in their workspace: a reload opens a new session).
* A new session beyond ``$CVCORE_MAX_SESSIONS`` across the class server sees a polite "full" page and
  costs nothing more.
* Operators: with sign-in on, the signed-in users named in ``$CVCORE_OPERATORS`` (e-mail or subject);
  with sign-in off, whoever types the operator token (kept in ``$CVCORE_OPERATOR_TOKEN_FILE``, made by the
  class server). :func:`is_operator` is asked again before every operator action.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import socket
import threading
from pathlib import Path

import streamlit as st

from cvcore.sessions import SessionRegistry, sessions_root
from cvcore.workspace import state_dir
from ui.workspace import sign_in_configured

PUBLISH_EVERY_S = 3.0
OPERATOR_KEY = "cvx_operator_token_sha256"  # the hash of the token this session typed, never the token


def _number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def max_sessions() -> int:
    return int(_number("CVCORE_MAX_SESSIONS", 500))


def idle_seconds() -> float:
    return _number("CVCORE_SESSION_IDLE_S", 3600)


def _runtime():
    from streamlit import runtime

    return runtime.get_instance() if runtime.exists() else None


def _session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def registry() -> SessionRegistry:
    """This page server's registry (:func:`cvcore.sessions.sessions_root`), with its publishing thread."""
    name = os.environ.get("CVCORE_PAGE_SERVER") or f"{socket.gethostname()}-{os.getpid()}"
    return _registry(str(sessions_root()), name)


@st.cache_resource(show_spinner=False)
def _registry(root: str, name: str) -> SessionRegistry:
    reg = SessionRegistry(root, name)

    def publish_now_and_then():
        while True:
            rt = _runtime()
            try:
                idle = reg.publish(alive=rt.is_active_session if rt is not None else None, idle_s=idle_seconds())
                for session in idle if rt is not None else []:
                    close_idle_session(rt, session)
            except Exception:  # noqa: BLE001 - a full disk or a closing runtime: the next round tries again
                pass
            threading.Event().wait(PUBLISH_EVERY_S)

    threading.Thread(target=publish_now_and_then, name="session-registry", daemon=True).start()
    return reg


def close_idle_session(rt, session_id: str) -> None:
    """Close a session nobody has used for the idle time-to-live: its state is freed and its place given up.

    Streamlit's runtime is changed only on its event loop, so the close is scheduled there. The session's
    websocket is closed too: a tab still open then reconnects as a new session (its page runs again from the
    workspace) rather than staying on a dead session that ignores every click.
    """
    import asyncio

    rt.mark_session_nonresumable(session_id)  # thread-safe: the reconnect must not resume what is closed
    client = rt.get_client(session_id)
    loop = rt._get_async_objs().eventloop  # no public handle on the runtime's loop in Streamlit 1.67

    async def close() -> None:
        rt.close_session(session_id)
        socket = getattr(client, "_websocket", None)  # Streamlit's Starlette session client
        if socket is not None:
            try:
                await socket.close(code=1001, reason="idle")  # 1001 going away: the browser reconnects
            except Exception:  # noqa: BLE001 - already gone
                pass

    asyncio.run_coroutine_threadsafe(close(), loop)


def _user_label() -> str:
    if sign_in_configured() and st.user.is_logged_in:
        return str(st.user.get("email") or st.user.get("name") or st.user.get("sub") or "signed in")
    return "anonymous"


def admit_session(open_workspace, page: str):
    """This session's workspace (``open_workspace()``), with the session's action noted in the registry; a new
    session on a full class server sees the "full" page and stops there, before any workspace is opened."""
    session = _session_id()
    if session is None:  # not under a Streamlit runtime
        return open_workspace()
    reg = registry()
    if not reg.known(session) and reg.count() >= max_sessions():
        st.title("The class server is full")
        st.info("Every place on the class server is taken just now. Try again in a minute: places free up as "
                "others leave. Your work is kept in your workspace.", icon=":material/hourglass_top:")
        st.stop()
    ws = open_workspace()
    reg.touch(session, workspace=ws.id, user=_user_label(), page=page)
    return ws


# ------------------------------------------------------------------------------------------- operators
def operators() -> set[str]:
    return {name.strip().lower() for name in os.environ.get("CVCORE_OPERATORS", "").split(",") if name.strip()}


def operator_token_path() -> Path:
    return Path(os.environ.get("CVCORE_OPERATOR_TOKEN_FILE") or state_dir() / "class-server" / "operator-token")


def _token_sha256() -> str | None:
    try:
        token = operator_token_path().read_text().strip()
    except OSError:
        return None
    return hashlib.sha256(token.encode()).hexdigest() if token else None


def is_operator() -> bool:
    """Whether this session may use the operator's page, decided now (never remembered as a yes)."""
    if sign_in_configured():
        if not st.user.is_logged_in:
            return False
        names = {str(st.user.get(k) or "").lower() for k in ("email", "sub")} - {""}
        return bool(names & operators())
    typed = st.session_state.get(OPERATOR_KEY)
    if not typed:  # most sessions: no file read on their every run (app.py asks to list the page)
        return False
    current = _token_sha256()
    return bool(current and hmac.compare_digest(typed, current))


def try_operator_token(token: str) -> bool:
    """Check a typed operator token; on success this session holds its hash (the token itself is not kept)."""
    current = _token_sha256()
    typed = hashlib.sha256(token.strip().encode()).hexdigest()
    if current and token.strip() and hmac.compare_digest(typed, current):
        st.session_state[OPERATOR_KEY] = typed
        return True
    return False

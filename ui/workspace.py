"""Whose workspace this browser session works in, decided once per rerun by app.py.

* **Sign-in on** (the operator put an ``[auth]`` section in ``.streamlit/secrets.toml``): users sign in
  with OpenID Connect (``st.login``); each has one workspace, keyed by the ID token's issuer and subject.
  Workspace links are refused: a signed-in user's work is reached by signing in, never by a URL.
* **Sign-in off**: the workspace is named by an unguessable token kept in the page's URL (``?ws=``) on
  every page, so a reload or a bookmark brings the work back. The sidebar shows that link (to bookmark
  or copy), and says that whoever has it sees the work.

Pages call :func:`current_workspace`; nothing else decides ownership.
"""
from __future__ import annotations

import threading
import time

import streamlit as st

from cvcore.workspace import Store, StoreError, Workspace, new_token, store_root

PARAM = "ws"
TOKEN_KEY = "cvx_ws_token"
NOTICE_KEY = "cvx_ws_notice"


SWEEP_EVERY_S = 6 * 3600


@st.cache_resource(show_spinner=False)
def _store(root: str) -> Store:
    s = Store(root)

    def sweep_now_and_then():  # anonymous workspaces unused too long go, while the server runs
        while True:
            try:
                s.sweep()
            except OSError:
                pass  # a folder that vanished under the sweep: the next round sees the rest
            time.sleep(SWEEP_EVERY_S)

    threading.Thread(target=sweep_now_and_then, name="workspace-sweep", daemon=True).start()
    return s


def store() -> Store:
    """The server's workspace store (``$CVCORE_STATE_DIR/workspaces``); swept when first opened and every six hours."""
    return _store(str(store_root()))


def sign_in_configured() -> bool:
    """Whether the operator turned sign-in on (an ``[auth]`` section in the secrets)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all: sign-in is off
        return False


def sign_in_required() -> bool:
    """Sign-in is on and this session has not signed in."""
    return sign_in_configured() and not st.user.is_logged_in


def sign_in_page() -> None:
    """What a visitor sees while sign-in is on and they have not signed in."""
    st.title("ConvNet Explorer")
    st.write("Sign in to work here: your runs, uploads and results are kept for you, and only you see them.")
    st.button("Sign in", type="primary", icon=":material/login:", on_click=st.login, key="cvx_login")


def current_workspace() -> Workspace:
    """This session's workspace; with sign-in on and no one signed in, the sign-in page, then ``st.stop()``."""
    if sign_in_configured():
        return _signed_in_workspace()
    return _anonymous_workspace()


def _signed_in_workspace() -> Workspace:
    if PARAM in st.query_params:  # a workspace link means nothing here: work is reached by signing in
        del st.query_params[PARAM]
        st.session_state[NOTICE_KEY] = "Workspace links are not used on this server: sign in to reach your work."
    if not st.user.is_logged_in:
        sign_in_page()
        st.stop()
    issuer, subject = st.user.get("iss"), st.user.get("sub")
    try:
        return store().user(str(issuer or ""), str(subject or ""))
    except StoreError as err:
        st.error(f"{err} Ask the operator to check the sign-in provider.", icon=":material/error:")
        st.stop()


def _anonymous_workspace() -> Workspace:
    token = st.session_state.get(TOKEN_KEY)
    from_url = st.query_params.get(PARAM)
    if from_url and from_url != token:
        try:
            store().anonymous(from_url)
            token = from_url
        except StoreError as err:
            st.session_state[NOTICE_KEY] = f"{err} A new workspace was started."
    if token is None:
        token = new_token()
    st.session_state[TOKEN_KEY] = token
    if st.query_params.get(PARAM) != token:  # on every page: page switches drop the query string
        st.query_params[PARAM] = token
    ws = store().anonymous(token)
    return ws


def job_owner() -> str:
    """Whom the job queue counts a job against: the workspace, so one user runs one job at a time
    whichever tab or page started it, and a reloaded page finds its running job again."""
    return current_workspace().id


def workspace_sidebar(ws: Workspace) -> None:
    """The sidebar's word on the workspace: the link to come back with (anonymous), or who is signed in."""
    with st.sidebar:
        notice = st.session_state.pop(NOTICE_KEY, None)
        if notice:
            st.warning(notice, icon=":material/link_off:")
        if ws.kind == "user":
            st.caption(f":material/person: Signed in as {st.user.get('name') or st.user.get('email') or 'you'}.")
            st.button("Sign out", key="cvx_logout", on_click=st.logout, icon=":material/logout:")
            return
        with st.expander("Your workspace link", icon=":material/link:"):
            base = (st.context.url or "").split("?")[0]
            link = f"{base}?{PARAM}={st.session_state[TOKEN_KEY]}"
            # A markdown link, not st.code: the code element's highlighter (1.5 MB of script) would cost every
            # page load half a second of the browser's time, and this sidebar is on every page.
            st.markdown(f"[`{link}`]({link})")
            st.caption("Your runs and uploads are kept under this link: bookmark it to come back. "
                       "Whoever has the link sees your work, so share it only with people you trust.")

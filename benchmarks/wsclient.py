"""A browser-less Streamlit session: it speaks Streamlit's websocket protocol as the browser's frontend does.

What a browser does, and this does too: GET the page (through the proxy, which sets its sticky cookie),
open ``/_stcore/stream`` with that cookie, the page's Origin and the XSRF token in the subprotocol, send
``BackMsg.rerun_script`` with the page's name, query string and widget states, and read ``ForwardMsg``s
until ``script_finished``. It keeps the query string the app sets (the workspace link), fires the
pages' ``run_every`` fragments at their interval (``auto_rerun``), and answers as the frontend would.
What it does not do: render anything, or load the frontend's JavaScript (the browser sessions of
benchmarks/load.py do).

Used by benchmarks/load.py; ``python benchmarks/wsclient.py URL`` opens the Filters page once and prints.
"""
from __future__ import annotations

import http.cookiejar
import threading
import time
import urllib.request
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect

__all__ = ["ProtocolSession", "ProtocolError"]


class ProtocolError(RuntimeError):
    """The session broke: the socket closed, a run timed out, or the page showed an exception."""


class ProtocolSession:
    """One user's session without a browser.

    Args:
        base: the app's (or the proxy's) URL, e.g. ``http://127.0.0.1:8501``.
        timeout: seconds a script run may take before it counts as an error.
    """

    def __init__(self, base: str, timeout: float = 60.0):
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        self.query = ""
        self.page = ""
        self.widgets: dict[str, object] = {}  # label -> the widget's proto (the last run's)
        self.exceptions: list[str] = []
        self.fragments: dict[str, float] = {}  # fragment id -> its run_every interval (s)
        # Messages kept by hash, as the frontend keeps them: it tells the server which it has, and the server
        # then sends a reference instead of the message (so the server's work is what a browser causes).
        self.cache: dict[str, bytes] = {}
        self._ws = None
        self._send_lock = threading.Lock()

    # -- connecting
    def open(self, page: str) -> float:
        """GET ``page`` (as a browser loads the HTML), connect, and run it; seconds until its run finished."""
        t0 = time.perf_counter()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        with opener.open(f"{self.base}/{page}", timeout=self.timeout) as r:
            r.read()
        cookies = {c.name: c.value for c in self.jar}
        split = urlsplit(self.base)
        ws_url = f"{'wss' if split.scheme == 'https' else 'ws'}://{split.netloc}/_stcore/stream"
        protocols = ["streamlit"] + ([cookies["_streamlit_xsrf"]] if "_streamlit_xsrf" in cookies else [])
        self._ws = connect(ws_url, subprotocols=protocols, origin=f"{split.scheme}://{split.netloc}",
                           additional_headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())},
                           open_timeout=self.timeout, max_size=None, compression=None)
        self.run(page)
        return time.perf_counter() - t0

    @property
    def page_server(self) -> str | None:
        """The proxy's sticky cookie: which page server this session is on."""
        return next((c.value for c in self.jar if c.name == "cvx_page_server"), None)

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    # -- runs
    def run(self, page: str | None = None, *, widget: tuple[str, object] | None = None,
            fragment_id: str | None = None) -> float:
        """One script run (a page switch, a widget change, or a fragment's); seconds until it finished.

        Args:
            page: the page to run (default: the current one).
            widget: ``(label, value)``: the widget with that label set to ``value`` (an option's label for a
                radio or a selectbox, as Streamlit sends them; a number; a bool); the others keep their
                defaults, as on a fresh page.
            fragment_id: run only that fragment (what ``run_every`` does).

        Raises:
            ProtocolError: the socket closed, no ``script_finished`` within ``timeout``, or the page showed
                an exception.
        """
        if page is not None and page != self.page:
            self.page, self.widgets = page, {}
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query
        cs.page_name = self.page
        if fragment_id:
            cs.fragment_id, cs.is_auto_rerun = fragment_id, True
        cs.cached_message_hashes.extend(self.cache)
        if widget is not None:
            label, value = widget
            proto = self.widgets.get(label)
            if proto is None:
                raise ProtocolError(f"no widget labelled {label!r} on {self.page!r}: {sorted(self.widgets)}")
            state = cs.widget_states.widgets.add()
            state.id = proto.id
            if isinstance(value, str):
                state.string_value = value
            elif isinstance(value, bool):
                state.bool_value = value
            elif isinstance(value, int):
                state.int_value = value
            else:
                state.double_value = float(value)
        t0 = time.perf_counter()
        with self._send_lock:
            self._ws.send(msg.SerializeToString())
            self._read_until_finished(t0)
        return time.perf_counter() - t0

    def _read_until_finished(self, t0: float) -> None:
        while True:
            left = self.timeout - (time.perf_counter() - t0)
            if left <= 0:
                raise ProtocolError(f"no end of the script run on {self.page!r} within {self.timeout:.0f} s")
            try:
                raw = self._ws.recv(timeout=left)
            except TimeoutError:
                continue
            except Exception as err:  # the socket closed
                raise ProtocolError(f"the connection closed: {type(err).__name__}: {err}") from None
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            if fwd.WhichOneof("type") == "ref_hash" and fwd.ref_hash in self.cache:
                cached = ForwardMsg()
                cached.ParseFromString(self.cache[fwd.ref_hash])
                cached.metadata.CopyFrom(fwd.metadata)  # the reference's place on the page
                fwd = cached
            elif fwd.metadata.cacheable and fwd.hash:
                self.cache[fwd.hash] = raw
            kind = fwd.WhichOneof("type")
            if kind == "delta":
                self._note_delta(fwd.delta)
            elif kind == "page_info_changed":
                self.query = fwd.page_info_changed.query_string
            elif kind == "auto_rerun":
                self.fragments[fwd.auto_rerun.fragment_id] = fwd.auto_rerun.interval
            elif kind == "stop_auto_rerun":
                self.fragments.pop(fwd.stop_auto_rerun.fragment_id, None)
            elif kind == "script_finished":
                if fwd.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # the app asked for a rerun (st.rerun): the run the user waits for follows
                if self.exceptions:
                    raise ProtocolError(f"the page showed an exception: {self.exceptions[-1][:300]}")
                return

    def _note_delta(self, delta) -> None:
        if delta.WhichOneof("type") != "new_element":
            return
        el = delta.new_element
        kind = el.WhichOneof("type")
        if kind == "exception":
            self.exceptions.append(f"{el.exception.type}: {el.exception.message}")
            return
        proto = getattr(el, kind, None) if kind else None
        label = getattr(proto, "label", None)
        if label and getattr(proto, "id", ""):
            self.widgets[label] = proto

    def due_fragments(self, last: dict, now: float) -> list[str]:
        """The ``run_every`` fragments whose interval has passed since ``last[fragment]`` (updated)."""
        due = [f for f, every in self.fragments.items() if now - last.get(f, 0.0) >= every]
        for f in due:
            last[f] = now
        return due


if __name__ == "__main__":
    import sys

    s = ProtocolSession(sys.argv[1])
    print(f"Filters: {s.open('filters'):.2f} s on {s.page_server or 'the app'}; query {s.query!r}")
    print(f"widgets: {sorted(s.widgets)[:12]}")
    for i in range(3):
        padding = "same" if i % 2 == 0 else "valid"
        print(f"rerun (Padding {padding}): {s.run(widget=('Padding', padding)):.3f} s")
    print(f"Train: {s.run('train'):.2f} s; fragments {s.fragments}")
    s.close()

"""What a real browser's page is doing, seen from inside it: the one home of the scripts that the
browser tests (tests/test_*.py) and the browser benchmarks (benchmarks/responsiveness.py, load.py)
add to a Playwright page.

* ``READY``: connected, a script run has finished, no skeleton or spinner shows, held ``QUIET_MS``.
* ``COUNT_RUNS`` (an init script): ``window.__cvRuns`` counts the script runs that have ended, full
  reruns and fragments alike, so that a caller waits for the run its own click caused, never for a
  fixed time.

  A run counts when the server's ``script_finished`` message has arrived on the page's websocket and
  the page has then drawn a frame. The page's ``data-test-script-state`` attribute cannot be counted
  on: when a rerun's messages reach a busy browser together, React renders "running" and "not
  running" in one commit, the attribute never changes, and a run that happened goes unseen (measured:
  2 in 100 radio flips under 3 CPU hogs, the server's frames showing each run finished in 0.2 s).

  Also, in the page's clock (``performance.now()``): ``__cvClickAt``, the first click since the marks
  were cleared (``CLEAR_MARKS``); ``__cvRunEndAt``, the first run's end since then;
  ``__cvConnectedAt``, when the page first said CONNECTED; ``__cvFirstRunAt``, when a script run was
  first seen.
"""
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

QUIET_MS = 300

READY = """quiet => {
  const app = document.querySelector('[data-testid="stApp"]');
  const ready = !!app && app.dataset.testScriptState === 'notRunning'
    && app.dataset.testConnectionState === 'CONNECTED'
    && !document.querySelector('[data-testid="stSkeleton"], [data-testid="stSpinner"]');
  const now = performance.now();
  if (!ready) { window.__cvReadySince = null; return false; }
  if (window.__cvReadySince == null) window.__cvReadySince = now;
  return now - window.__cvReadySince >= quiet;
}"""

# The field number of ForwardMsg.script_finished, from the Streamlit that is installed.
_SCRIPT_FINISHED = ForwardMsg.DESCRIPTOR.fields_by_name["script_finished"].number

COUNT_RUNS = """() => {
  window.__cvRuns = 0; window.__cvClickAt = null; window.__cvRunEndAt = null;
  window.__cvConnectedAt = null; window.__cvFirstRunAt = null;

  // Whether a ForwardMsg's bytes carry script_finished: its top-level fields, walked (varint and
  // length-delimited ones; a ForwardMsg has no others at the top).
  const FIELD = %d;
  const isScriptFinished = buffer => {
    const b = new Uint8Array(buffer);
    let i = 0;
    const varint = () => { let v = 0, scale = 1, x; do { x = b[i++]; v += (x & 0x7f) * scale; scale *= 128; } while (x & 0x80 && i < b.length); return v; };
    while (i < b.length) {
      const tag = varint(), field = Math.floor(tag / 8), wire = tag & 7;
      if (wire === 0) { varint(); if (field === FIELD) return true; }
      else if (wire === 2) { const length = varint(); i += length; }  // not `i += varint()`: that adds to i as it was
      else if (wire === 1) { i += 8; } else if (wire === 5) { i += 4; } else { return false; }
    }
    return false;
  };
  // Counted once the page has drawn a frame after the message (two animation frames): what the run
  // changed is on screen by then.
  const ended = () => requestAnimationFrame(() => requestAnimationFrame(() => {
    window.__cvRuns += 1;
    if (window.__cvRunEndAt == null) window.__cvRunEndAt = performance.now();
  }));
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', event => {
        const data = event.data;
        if (data instanceof ArrayBuffer) { if (isScriptFinished(data)) ended(); }
        else if (data instanceof Blob) { data.arrayBuffer().then(b => { if (isScriptFinished(b)) ended(); }); }
      });
    }
  };

  new MutationObserver(records => {
    const now = performance.now();
    for (const r of records) {
      const value = r.target.getAttribute(r.attributeName);
      if (r.attributeName === 'data-test-connection-state') {
        if (value === 'CONNECTED' && window.__cvConnectedAt == null) window.__cvConnectedAt = now;
      } else if ((value === 'running' || r.oldValue === 'running') && window.__cvFirstRunAt == null) {
        window.__cvFirstRunAt = now;
      }
    }
  }).observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                        attributeFilter: ['data-test-script-state', 'data-test-connection-state']});
  window.addEventListener('click', () => {
    if (window.__cvClickAt == null) window.__cvClickAt = performance.now();
  }, true);
}""" % _SCRIPT_FINISHED

# Clears the click and run-end marks; returns the runs counted so far.
CLEAR_MARKS = "() => { window.__cvClickAt = null; window.__cvRunEndAt = null; return window.__cvRuns; }"

"""Other users' experience while two training jobs run, against the same server idle.

Starts the app as users do (``streamlit run app.py --server.headless true``) on a free port, with a
temporary state folder (``CVCORE_STATE_DIR``, ``CVCORE_WORKSPACE_DIR``) and without ``RAY_ADDRESS``
(unless ``--ray-address`` is given), so the app starts its own local Ray. It waits for
``/_stcore/health``, then opens the home page (reloading it) until the sidebar says "Jobs run on"
and names TensorFlow's device, then until the server's process tree has gone quiet (Ray's warm
workers import TensorFlow), so that the idle baseline is idle. Then, ``--repeats`` times:

* idle: no job runs. Measured, in headless Chromium (Debian's, through Playwright):

  - page load: ``--loads`` times (default 12), a fresh browser context (a new visitor) opens
    ``/filters``; seconds from ``page.goto`` until the first ``[data-testid="stMetric"]`` is
    visible. Printed for information beside it: when the websocket said CONNECTED and when the first
    script run began (both in the page's clock, from navigation), and "fully run", until the script
    run has ended and the page has stayed ready 0.3 s; the next load starts only then, so loads never
    overlap. Then, for information, as many loads by a returning visitor: new tabs of one context,
    with Streamlit's scripts in the browser's cache (the target is judged on new visitors);
  - Filters rerun: ``--reruns`` times (default 12), in one open Filters page, a click that flips the
    Padding radio (valid / same); seconds from the click (a capture listener's timestamp in the
    page) until that script run has ended (its ``script_finished`` message arrived on the page's
    websocket and the page drew a frame: tests/pagewatch.py's run counter), in the page's own clock;
  - health: all along, ``GET /_stcore/health`` every 0.25 s on a new connection, its latency
    (a probe that fails or takes over 5 s counts as 5 s, and is counted);
  - CPU, every 0.5 s from /proc (psutil): the page server's own process (the Streamlit process
    alone, not its children), Ray (every descendant of the page server: the job side process,
    Ray's head processes and workers; with ``--ray-address``, only the side process), this
    benchmark with its Chromium, and the machine as a whole, each as a share of all the machine's
    CPUs (100% = every core busy); and how long the page server's threads were runnable but waiting
    for a CPU (/proc/PID/task/*/schedstat), in thread-seconds per second: what tells a server short
    of CPU from one that waits on something else (a slow page with this near 0 is blocked, not
    starved).

  One unmeasured load and one unmeasured rerun go first in each phase. A load or rerun that takes
  longer than ``--timeout`` (default 60 s) counts as that long, is counted, and leaves a screenshot
  in build/responsiveness/.
* busy: two other users (two browser contexts, two workspaces) each open the Train page, pick
  Fashion-MNIST (Debian's copy, offline) in "Data set", set "Training images" to
  ``--train-images`` (default 60000: with the page's 5000, 100 epochs took about 5 minutes, less
  than a busy phase) and Epochs to ``--epochs`` (default 100), keep the page's default model,
  validation size and Fast, and press Train; once both pages show a progress bar of an epoch, the
  same measurements as idle, while their pages stay open (they poll their jobs every second, as a
  user's page does). After every load and rerun, and at the end, both pages must still show an
  epoch's progress (the jobs trained throughout; a job seen ended makes the busy figures invalid,
  and the report says so; their progress at the start and at the end is printed); then both press
  Stop, and the next repeat waits for the jobs to end and the machine to go quiet.

  The trainers' pages run in a Chromium of their own. They stand for students' browsers, which run on
  the students' machines, not on the server: by default (``--trainer-browsers idle``) that Chromium
  runs at the idle scheduling policy (``chrt --idle 0``), so its drawing takes only CPU that nothing
  else wants, while the requests it makes (a fragment run a second each) reach the server as they
  would from a laptop. How many fragment runs each trainer's page completed per second is printed,
  so that the load they put on the server is seen. ``--trainer-browsers normal`` runs it at normal
  priority, sharing the 2 cores with the measured browser and the server, as if the students sat
  at the server.

* stand-ins (``--stand-ins``, after the busy phase, once the jobs have stopped): page loads as above, twice,
  while two processes that are not the app run flat out at the idle scheduling policy, as the jobs do:
  first pure CPU (a Python loop), then streaming memory (numpy sums over 256 MiB). They tell what the
  app's jobs cost the pages from what any idle-priority work costs them on this machine: a process at
  the idle policy gets only CPU time that nothing else wants, yet it still shares the cores' caches,
  the memory bus and, on a virtual machine, the host.

Prints, per repeat, p50, p95 and max of each latency idle and busy, the ratios busy/idle, the CPU
shares (mean and p95 of the 0.5 s samples), and PASS/MISS against the targets for the busy phase
on the 2-core CI machine: page load p95 <= 3 s, Filters rerun p95 <= 1.5 s, every health probe
answered within 0.5 s (its max), the page server's process at most 35% of the machine (its mean
over the phase; the p95 of the samples is printed beside it). With several repeats, the spread
(min-max across repeats) of each p95 and how many repeats met each target. The browsers run on the
same machine as the server (so do CI's): their CPU is printed too, and "others" is what the rest
of the machine took, which says whether the figures come from a shared machine. It prints; it
asserts nothing. At the end it stops the server, checks that no process of its local Ray is left
(ends any it finds, and says so) and closes the browsers.

Usage:
    .venv/bin/python benchmarks/responsiveness.py [--loads N] [--reruns M] [--repeats R] [--epochs E]
        [--train-images K] [--trainer-browsers idle|normal] [--stand-ins] [--timeout S] [--ray-address ADDR]
        [--keep]
"""
from __future__ import annotations

import argparse
import http.client
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
STREAMLIT = Path(sys.executable).parent / "streamlit"
SHOTS = ROOT / "build" / "responsiveness"
VIEWPORT = {"width": 1400, "height": 1000}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NCPU = psutil.cpu_count() or 1

sys.path.insert(0, str(ROOT / "tests"))
from pagewatch import CLEAR_MARKS, COUNT_RUNS, QUIET_MS, READY  # noqa: E402 (the page's view, shared with the tests)

HEALTH_EVERY_S = 0.25
HEALTH_TIMEOUT_S = 5.0
CPU_EVERY_S = 0.5
SERVER_START_S = 120  # until /_stcore/health answers
JOBS_READY_S = 300  # until the sidebar says where jobs run (Ray started, workers checked)
QUIET_S = 180  # until the server's process tree has gone quiet
QUIET_SHARE = 10.0  # ... under this % of the machine, over QUIET_WINDOW_S
QUIET_WINDOW_S = 3.0
TRAIN_START_S = 300  # until both training pages show an epoch's progress
STOP_S = 120  # until a stopped job's view is gone
LEFTOVER_S = 30  # until the local Ray's processes are gone after the server stopped

TARGETS = {  # metric: (statistic judged, limit, words)
    "load": ("p95", 3.0, "p95 <= 3 s"),
    "rerun": ("p95", 1.5, "p95 <= 1.5 s"),
    "health": ("max", 0.5, "max <= 0.5 s"),
    "server": ("mean", 35.0, "mean <= 35%"),
}

METRIC = '[data-testid="stMetric"]'
SESSION = re.compile(r"session_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d+_\d+")


class BenchError(RuntimeError):
    """A step of the benchmark could not be done; the message says which and what was seen."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


# ============================================================================ the server and its samplers


class AppServer:
    """``streamlit run app.py`` as users start it, with a state folder of its own."""

    def __init__(self, folder: Path, ray_address: str | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "server.log"
        self.env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CVCORE_STATE_DIR=str(folder / "state"),
                        CVCORE_WORKSPACE_DIR=str(folder / "workspaces"))
        self.env.pop("RAY_ADDRESS", None)
        if ray_address:
            self.env["RAY_ADDRESS"] = ray_address
        self.proc = None

    def start(self) -> "AppServer":
        if not STREAMLIT.exists():
            raise BenchError(f"no streamlit at {STREAMLIT}: run this with the project's .venv/bin/python")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(STREAMLIT), "run", "app.py", "--server.headless", "true", "--server.port", str(self.port),
                 "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)  # a Ctrl-C reaches the benchmark, which stops it in order
        deadline = time.monotonic() + SERVER_START_S
        while True:  # polling the health check until it answers
            if health_probe(self.port, 2.0) is not None:
                return self
            if self.proc.poll() is not None:
                raise BenchError(f"the app exited with {self.proc.returncode} before answering:\n{log_tail(self.log)}")
            if time.monotonic() > deadline:
                raise BenchError(f"/_stcore/health did not answer within {SERVER_START_S} s:\n{log_tail(self.log)}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            print(f"  the page server did not end within 30 s of SIGTERM: killed (pid {self.proc.pid})")
            self.proc.kill()
            self.proc.wait(10)


def health_probe(port: int, timeout: float):
    """Seconds ``GET /_stcore/health`` took on a new connection, or None when it failed."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/_stcore/health")
        resp = conn.getresponse()
        resp.read()
        ok = resp.status == 200
    except (OSError, http.client.HTTPException):
        ok = False
    finally:
        conn.close()
    return time.perf_counter() - t0 if ok else None


class HealthSampler(threading.Thread):
    """``(time, seconds or None)`` of a health probe every HEALTH_EVERY_S, from start to stop."""

    def __init__(self, port: int):
        super().__init__(name="bench-health", daemon=True)
        self.port, self.samples, self._halt = port, [], threading.Event()

    def run(self):
        next_at = time.monotonic()
        while not self._halt.is_set():
            t = time.monotonic()
            self.samples.append((t, health_probe(self.port, HEALTH_TIMEOUT_S)))
            next_at = max(next_at + HEALTH_EVERY_S, time.monotonic())
            self._halt.wait(next_at - time.monotonic())

    def stop(self):
        self._halt.set()
        self.join(HEALTH_TIMEOUT_S + 2)

    def window(self, t0, t1):
        return [s for t, s in self.samples if t0 <= t <= t1]


def _runqueue_seconds(pid: int) -> float:
    """Seconds the process's threads have spent runnable but waiting for a CPU (/proc/PID/task/*/schedstat's
    second field; threads that ended take theirs with them). 0 where the kernel does not say."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def _cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


class CpuSampler(threading.Thread):
    """CPU shares of the machine every CPU_EVERY_S: the page server's process, its descendants (Ray), this
    benchmark with its browsers, and the whole machine. Also remembers every process of the server's tree
    (and the Ray sessions their command lines name), for the check that none is left behind."""

    def __init__(self, server_pid: int):
        super().__init__(name="bench-cpu", daemon=True)
        self.server_pid = server_pid
        self.samples = []  # (time, {"server", "ray", "bench", "machine"}: % of all CPUs)
        self.seen = {}  # (pid, create_time) -> cmdline, of the server's descendants
        self.sessions = set()
        self._procs = {}  # pid -> psutil.Process (kept: its create_time tells a reused pid)
        self._halt = threading.Event()
        self.error = None

    def _proc(self, pid):
        p = self._procs.get(pid)
        if p is None:
            p = self._procs[pid] = psutil.Process(pid)
        return p

    def _tree(self, root: int) -> list:
        try:
            return psutil.Process(root).children(recursive=True)
        except psutil.Error:
            return []

    def _snapshot(self) -> dict:
        """cpu seconds per group, and per process of the groups (key: (pid, create_time))."""
        now = time.monotonic()
        ray = self._tree(self.server_pid)
        ray_pids = {p.pid for p in ray} | {self.server_pid}
        mine = [psutil.Process()] + [p for p in self._tree(os.getpid()) if p.pid not in ray_pids]
        per = {}
        groups = {"server": [self.server_pid], "ray": [p.pid for p in ray], "bench": [p.pid for p in mine]}
        for group, pids in groups.items():
            for pid in pids:
                try:
                    p = self._proc(pid)
                    key = (pid, p.create_time())
                    per[key] = (group, _cpu_seconds(p))
                    if group == "ray" and key not in self.seen:
                        cmd = " ".join(p.cmdline())
                        self.seen[key] = cmd
                        self.sessions.update(SESSION.findall(cmd))
                except psutil.Error:
                    self._procs.pop(pid, None)
        return {"t": now, "per": per, "machine": psutil.cpu_times(), "waiting": _runqueue_seconds(self.server_pid)}

    @staticmethod
    def _busy(times) -> tuple[float, float]:
        total = times.user + times.nice + times.system + times.idle + getattr(times, "iowait", 0) + \
            getattr(times, "irq", 0) + getattr(times, "softirq", 0) + getattr(times, "steal", 0)
        return total - times.idle - getattr(times, "iowait", 0), total

    def run(self):
        try:
            prev = self._snapshot()
            while not self._halt.wait(CPU_EVERY_S):
                cur = self._snapshot()
                cap = (cur["t"] - prev["t"]) * NCPU
                share = {"server": 0.0, "ray": 0.0, "bench": 0.0}
                for key, (group, secs) in cur["per"].items():
                    # A process seen for the first time was born since the last sample: all its time counts.
                    before = prev["per"].get(key, (group, 0.0))[1]
                    share[group] += max(secs - before, 0.0)
                share = {k: 100.0 * v / cap for k, v in share.items()}
                (b1, t1), (b0, t0) = self._busy(cur["machine"]), self._busy(prev["machine"])
                share["machine"] = 100.0 * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
                # Threads of the page server runnable but not running, per second: > 0.1 means it was short of CPU.
                share["waiting"] = max(cur["waiting"] - prev["waiting"], 0.0) / (cur["t"] - prev["t"])
                self.samples.append((cur["t"], share))
                prev = cur
        except Exception as err:  # noqa: BLE001 - reported by the main thread
            self.error = err

    def stop(self):
        self._halt.set()
        self.join(10)

    def window(self, t0, t1):
        return [s for t, s in self.samples if t0 <= t <= t1]

    def tree_share(self, seconds: float) -> float:
        """Mean share of the machine of the server and its descendants over the last ``seconds``."""
        now = time.monotonic()
        recent = self.window(now - seconds, now)
        return float(np.mean([s["server"] + s["ray"] for s in recent])) if recent else float("inf")


def wait_quiet(cpu: CpuSampler, why: str) -> float:
    """Poll until the server and its descendants take under QUIET_SHARE % of the machine over QUIET_WINDOW_S;
    bounded by QUIET_S (then it says so and goes on). Returns the seconds waited."""
    t0 = time.monotonic()
    time.sleep(QUIET_WINDOW_S + CPU_EVERY_S)  # a full window of samples taken from now on
    while True:
        share = cpu.tree_share(QUIET_WINDOW_S)
        if share < QUIET_SHARE:
            return time.monotonic() - t0
        if time.monotonic() - t0 > QUIET_S:
            print(f"  note: the server and Ray still took {share:.0f}% of the machine {QUIET_S} s after {why}; "
                  "measuring anyway")
            return time.monotonic() - t0
        time.sleep(CPU_EVERY_S)


# ============================================================================ the browser side


def wait_ready(page, timeout_s: float) -> None:
    """Wait until the page is ready (see READY) and has stayed so for QUIET_MS from now."""
    page.evaluate("() => { window.__cvReadySince = null; }")
    page.wait_for_function(READY, arg=QUIET_MS, timeout=timeout_s * 1000, polling=50)


def run_count(page) -> int:
    """Script runs (fragment runs included) the page has completed since it opened (COUNT_RUNS)."""
    return int(page.evaluate("() => window.__cvRuns") or 0)


def rerun(page, action, timeout_s: float) -> None:
    """Do ``action``, wait for the script run it causes to end, then for the page to be ready."""
    runs = run_count(page)
    action()
    page.wait_for_function("n => window.__cvRuns > n", arg=runs, timeout=timeout_s * 1000, polling=50)
    wait_ready(page, timeout_s)


def new_page(browser, count_runs: bool = True):
    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    if count_runs:
        page.add_init_script(f"({COUNT_RUNS})()")
    return page


def shoot(page, name: str) -> str:
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        page.screenshot(path=str(path))
        return str(path)
    except Exception:  # noqa: BLE001 - a screenshot is a help, not a step
        return "(no screenshot)"


def sidebar_text(page) -> str:
    try:
        return page.locator('[data-testid="stSidebar"]').inner_text(timeout=5000)
    except Exception:  # noqa: BLE001
        return "(no sidebar)"


def wait_jobs_ready(browser, url: str, timeout_s: float) -> str:
    """Open the home page, reloading it, until the sidebar says where jobs run and names TensorFlow's device;
    returns the sidebar's line about jobs."""
    from playwright.sync_api import Error as PlaywrightError

    page = new_page(browser)
    deadline = time.monotonic() + JOBS_READY_S
    text = ""
    try:
        page.goto(url, timeout=timeout_s * 1000)
        while True:
            try:
                wait_ready(page, max(5.0, min(timeout_s, deadline - time.monotonic())))
                text = sidebar_text(page)
                if "Jobs run on" in text and "Detecting the device" not in text:
                    return next(line for line in text.splitlines() if "Jobs run on" in line).strip()
            except PlaywrightError as err:
                text = f"{sidebar_text(page)} ({type(err).__name__}: {str(err).splitlines()[0]})"
            if time.monotonic() > deadline:
                raise BenchError(f"the sidebar did not say 'Jobs run on' within {JOBS_READY_S} s; it says:\n{text}\n"
                                 f"screenshot: {shoot(page, 'jobs-not-ready')}")
            time.sleep(1.0)  # the sidebar is drawn by a page run: poll by reloading
            page.reload(timeout=timeout_s * 1000)
    finally:
        page.context.close()


def measure_loads(browser, url: str, n: int, warmup: int, timeout_s: float, check=None, returning=False):
    """Page loads of /filters in fresh contexts (new visitors), or with ``returning``, in new tabs of one
    context (a returning visitor: Streamlit's scripts in the browser's cache, which keeps them a year, and
    V8's code cache): (seconds to the first visible metric, seconds until the run ended and the page stayed
    ready) each; a load that timed out counts as ``timeout_s`` and in ``failed``. Also, for information,
    when (since navigation, in the page's clock) the websocket connected and the first script run began.
    ``check()`` runs after each load, outside the timing."""
    from playwright.sync_api import Error as PlaywrightError

    first, full, failed, marks = [], [], 0, {"connected": [], "started": []}
    visitor = new_page(browser).context if returning else None
    for i in range(warmup + n):
        page = new_page(browser) if visitor is None else visitor.new_page()
        try:
            t0 = time.perf_counter()
            try:
                page.goto(url + "/filters", wait_until="commit", timeout=timeout_s * 1000)
                page.locator(METRIC).first.wait_for(state="visible", timeout=timeout_s * 1000)
                t1 = time.perf_counter()
                connected, started = page.evaluate("() => [window.__cvConnectedAt, window.__cvFirstRunAt]")
                if i >= warmup:
                    for key, value in (("connected", connected), ("started", started)):
                        if value is not None:
                            marks[key].append(value / 1000)
                wait_ready(page, timeout_s)
                t2 = time.perf_counter() - QUIET_MS / 1000  # the page was ready QUIET_MS before the wait ended
                ok = True
            except PlaywrightError as err:
                ok = False
                print(f"  page load {i + 1}: {type(err).__name__} after {time.perf_counter() - t0:.1f} s; "
                      f"screenshot: {shoot(page, f'load-timeout-{i + 1}')}")
            if i >= warmup:
                if ok:
                    first.append(t1 - t0)
                    full.append(max(t2 - t0, t1 - t0))
                else:
                    first.append(timeout_s)
                    full.append(timeout_s)
                    failed += 1
        finally:
            (page if visitor is not None else page.context).close()
        if check is not None:
            check()
    if visitor is not None:
        visitor.close()
    return first, full, failed, marks


def measure_reruns(browser, url: str, n: int, warmup: int, timeout_s: float, check=None):
    """Filters reruns in one open page, flipping the Padding radio: seconds from the click to the end of the
    script run it caused, in the page's clock; a rerun that timed out counts as ``timeout_s``. ``check()``
    runs after each rerun, outside the timing."""
    from playwright.sync_api import Error as PlaywrightError

    page = new_page(browser)
    times, failed = [], 0
    try:
        try:
            page.goto(url + "/filters", wait_until="commit", timeout=timeout_s * 1000)
            page.locator(METRIC).first.wait_for(state="visible", timeout=timeout_s * 1000)
            wait_ready(page, timeout_s)
        except PlaywrightError as err:  # the server does not answer: every rerun counts as timed out
            print(f"  reruns: the Filters page did not open within {timeout_s:.0f} s ({type(err).__name__}); "
                  f"all {n} reruns count as timed out; screenshot: {shoot(page, 'rerun-page-not-open')}")
            return [timeout_s] * n, n
        padding = page.locator(".st-key-flt_padding")
        current = "valid"
        for i in range(warmup + n):
            target = "same" if current == "valid" else "valid"
            runs = page.evaluate(CLEAR_MARKS)
            t0 = time.perf_counter()
            try:
                padding.get_by_text(target, exact=True).click(timeout=timeout_s * 1000)
                page.wait_for_function("n => window.__cvRuns > n", arg=runs, timeout=timeout_s * 1000, polling=20)
                wall = time.perf_counter() - t0
                click_at, end_at = page.evaluate("() => [window.__cvClickAt, window.__cvRunEndAt]")
                seconds = (end_at - click_at) / 1000 if click_at is not None and end_at is not None else wall
                ok = True
            except PlaywrightError as err:
                ok = False
                print(f"  rerun {i + 1}: {type(err).__name__} after {time.perf_counter() - t0:.1f} s; "
                      f"screenshot: {shoot(page, f'rerun-timeout-{i + 1}')}")
            if i >= warmup:
                times.append(seconds if ok else timeout_s)
                failed += not ok
            current = target
            try:
                wait_ready(page, timeout_s)
            except PlaywrightError:
                raise BenchError(f"the Filters page was not ready {timeout_s:.0f} s after rerun {i + 1}; "
                                 f"screenshot: {shoot(page, 'rerun-not-ready')}") from None
            if check is not None:
                check()
    finally:
        page.context.close()
    return times, failed


class Trainer:
    """Another user on the Train page, training the default net on Fashion-MNIST."""

    def __init__(self, browser, url: str, name: str):
        self.browser, self.url, self.name = browser, url, name
        self.page = None

    def start(self, epochs: int, train_images: int | None, timeout_s: float) -> None:
        """Open the Train page, set it up and press Train (each step bounded by ``timeout_s``)."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            self._start(epochs, train_images, timeout_s)
        except PlaywrightError as err:
            raise BenchError(f"{self.name}: starting a training run failed: {type(err).__name__}: "
                             f"{str(err).splitlines()[0]}; screenshot: {shoot(self.page, f'{self.name}-start')}") from None

    def _start(self, epochs: int, train_images: int | None, timeout_s: float) -> None:
        page = self.page = new_page(self.browser)
        page.goto(self.url + "/train", timeout=timeout_s * 1000)
        wait_ready(page, max(timeout_s, 120))  # the first Train page may build the model summary (Keras)
        combo = page.locator(".st-key-trn_dataset").get_by_role("combobox")  # the choice is the input's value
        if combo.input_value() != "Fashion-MNIST":
            combo.click()
            rerun(page, page.get_by_role("option", name="Fashion-MNIST", exact=True).click, timeout_s)
        if combo.input_value() != "Fashion-MNIST":
            raise BenchError(f"{self.name}: Data set shows {combo.input_value()!r}, not Fashion-MNIST")
        if train_images:
            self._set_train_images(train_images, timeout_s)
        field_ = page.locator(".st-key-trn_epochs input")
        if field_.input_value() != str(epochs):
            field_.fill(str(epochs))
            rerun(page, lambda: field_.press("Enter"), timeout_s)
        if field_.input_value() != str(epochs):
            raise BenchError(f"{self.name}: Epochs shows {field_.input_value()!r}, not {epochs} (the page allows 1-100)")
        button = page.locator(".st-key-trn_train").get_by_role("button", name="Train", exact=True)  # not its help
        if button.is_disabled():
            raise BenchError(f"{self.name}: Train is disabled; screenshot: {shoot(page, f'{self.name}-no-train')}")
        button.click()

    def _set_train_images(self, value: int, timeout_s: float) -> None:
        """The "Training images" select-slider (a range input), moved with the keyboard to ``value``."""
        page = self.page
        thumb = page.locator('[data-testid="stSlider"]', has_text="Training images").get_by_role("slider")
        choices = [int(t) for t in page.locator('[data-testid="stSlider"]', has_text="Training images")
                   .locator('[data-testid="stSliderTickBar"]').inner_text().split()]  # the first and the last
        now = int(thumb.get_attribute("aria-valuetext") or 0)
        if now == value:
            return
        runs = run_count(page)
        if value == max(choices):
            thumb.press("End")
        else:
            for _ in range(10):  # one step at a time, each seen by the page before the next
                if now == value:
                    break
                thumb.press("ArrowRight" if now < value else "ArrowLeft")
                page.wait_for_function("([el, old]) => el.getAttribute('aria-valuetext') !== old",
                                       arg=[thumb.element_handle(), str(now)], timeout=timeout_s * 1000)
                now = int(thumb.get_attribute("aria-valuetext") or 0)
        page.wait_for_function("n => window.__cvRuns > n", arg=runs, timeout=timeout_s * 1000, polling=50)
        wait_ready(page, timeout_s)
        shown = int(thumb.get_attribute("aria-valuetext") or 0)
        if shown != value:
            raise BenchError(f"{self.name}: Training images shows {shown}, not {value}; pick one of the page's "
                             "choices (500, 1000, 2000, 5000, 10000, 20000, 30000, 60000)")

    def progress(self, within_s: float = 10.0) -> str | None:
        """The progress bar's text, or None when the page shows none for ``within_s`` (a page redrawn after a
        lost connection, or a fragment rerun, may hide it a moment: that is not the job's end)."""
        bar = self.page.locator('[data-testid="stProgress"]').first
        deadline = time.monotonic() + within_s
        while True:
            try:
                bar.wait_for(state="attached", timeout=max(0.1, deadline - time.monotonic()) * 1000)
                return bar.inner_text(timeout=2000).strip()
            except Exception:  # noqa: BLE001 - gone, or redrawn between the two calls: look again
                if time.monotonic() > deadline:
                    return None

    def wait_training(self, deadline: float) -> str:
        """Wait until the page shows an epoch's progress; returns its text."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            self.page.locator('[data-testid="stProgress"]', has_text="Epoch").first.wait_for(
                timeout=max(1.0, deadline - time.monotonic()) * 1000)
        except PlaywrightError:
            alerts = [a.inner_text() for a in self.page.locator('[data-testid="stAlert"]').all()]
            raise BenchError(f"{self.name}: no epoch's progress within {TRAIN_START_S} s; alerts: {alerts}; "
                             f"screenshot: {shoot(self.page, f'{self.name}-not-training')}") from None
        return self.progress() or ""

    def stop(self) -> bool:
        """Press Stop and wait until the job's view is gone; False when it did not go within STOP_S."""
        from playwright.sync_api import Error as PlaywrightError

        if self.page is None:
            return True
        try:
            stop = self.page.locator(".st-key-trn_stop").get_by_role("button", name="Stop", exact=True)
            if stop.count():
                stop.click(timeout=30_000)
                self.page.locator(".st-key-trn_stop").wait_for(state="detached", timeout=STOP_S * 1000)
            return True
        except PlaywrightError as err:
            print(f"  {self.name}: the job did not stop within {STOP_S} s ({type(err).__name__}); "
                  f"screenshot: {shoot(self.page, f'{self.name}-not-stopped')}")
            return False

    def close(self) -> None:
        if self.page is not None:
            try:
                self.page.context.close()
            except Exception:  # noqa: BLE001 - the browser may be gone already
                pass
            self.page = None


def at_idle_policy(command: list, why: str) -> list:
    """``command`` run at the idle scheduling policy (``chrt --idle 0``), as the app's jobs run: it gets only
    CPU time that nothing else wants, and every process and thread it starts inherits the policy."""
    chrt = shutil.which("chrt")
    if chrt is None:
        raise BenchError(f"{why} needs chrt (util-linux)")
    return [chrt, "--idle", "0", *command]


def trainer_chromium(folder: Path, priority: str) -> str:
    """The Chromium the trainers' pages run in: CHROMIUM itself, or a launcher that starts it at the idle
    scheduling policy."""
    if priority == "normal":
        return CHROMIUM
    command = at_idle_policy([CHROMIUM], "--trainer-browsers idle (or pass --trainer-browsers normal)")
    launcher = folder / "chromium-idle"
    launcher.write_text(f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


STAND_INS = {  # kind: one process's endless work, one thread, no app involved
    "cpu": "x = 0\nwhile True:\n    x += 1",
    "memory": "import numpy as np\na = np.ones(32 * 2**20)\nwhile True:\n    a.sum()",  # 256 MiB, streamed
}


class StandIns:
    """Two processes at the idle scheduling policy, as the jobs run, doing ``kind`` of work (STAND_INS)
    instead of training: what any idle-priority work costs the pages on this machine, app aside."""

    def __init__(self, kind: str):
        command = at_idle_policy([sys.executable, "-c", STAND_INS[kind]], "--stand-ins")
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.procs = [subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
                      for _ in range(2)]

    def busy(self, seconds: float = 10.0) -> None:
        """Wait until both are running flat out (each near a full CPU over 1 s)."""
        deadline = time.monotonic() + seconds
        procs = [psutil.Process(p.pid) for p in self.procs]
        while True:
            start = [sum(p.cpu_times()[:2]) for p in procs]
            time.sleep(1.0)
            if all(sum(p.cpu_times()[:2]) - s > 0.5 for p, s in zip(procs, start)):
                return
            if time.monotonic() > deadline:
                raise BenchError(f"the stand-ins did not get busy within {seconds:.0f} s")

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait(10)


# ============================================================================ phases and figures


@dataclass
class Phase:
    name: str
    load: list = field(default_factory=list)
    full: list = field(default_factory=list)
    returning: list = field(default_factory=list)
    rerun: list = field(default_factory=list)
    health: list = field(default_factory=list)
    cpu: list = field(default_factory=list)
    connected: list = field(default_factory=list)
    started: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    seconds: float = 0.0
    notes: list = field(default_factory=list)


def run_phase(name, browser, server, health: HealthSampler, cpu: CpuSampler, args, check=None) -> Phase:
    t0 = time.monotonic()
    load, full, load_failed, marks = measure_loads(browser, server.url, args.loads, 1, args.timeout, check)
    returning, _, returning_failed, _ = measure_loads(browser, server.url, args.loads, 1, args.timeout, check,
                                                      returning=True)
    reruns, rerun_failed = measure_reruns(browser, server.url, args.reruns, 1, args.timeout, check)
    t1 = time.monotonic()
    probes = health.window(t0, t1)
    phase = Phase(name, load, full, returning, reruns, [HEALTH_TIMEOUT_S if s is None else s for s in probes],
                  cpu.window(t0, t1), marks["connected"], marks["started"],
                  {"load": load_failed, "returning": returning_failed, "rerun": rerun_failed,
                   "health": sum(s is None for s in probes)}, t1 - t0)
    if cpu.error is not None:
        raise BenchError(f"the CPU sampler failed: {cpu.error!r}")
    return phase


def stats(values) -> dict:
    if not len(values):
        return {"p50": float("nan"), "p95": float("nan"), "max": float("nan"), "mean": float("nan")}
    a = np.asarray(values, dtype=float)
    p50, p95 = np.percentile(a, [50, 95])
    return {"p50": float(p50), "p95": float(p95), "max": float(a.max()), "mean": float(a.mean())}


def ratio(busy: float, idle: float) -> str:
    if not (idle > 0) or np.isnan(busy):
        return "   n/a"
    return f"{busy / idle:5.1f}x"


def verdict(metric: str, busy_stats: dict) -> tuple[bool, str]:
    stat, limit, words = TARGETS[metric]
    ok = busy_stats[stat] <= limit
    return ok, f"{words:<14} {'PASS' if ok else 'MISS'}"


LATENCIES = (("load", "Page load to first metric (s)"), ("connected", "  websocket connected, info (s)"),
             ("started", "  first script run began, info (s)"), ("full", "  page fully run, info (s)"),
             ("returning", "  returning visitor, info (s)"),
             ("rerun", "Filters rerun (s)"), ("health", "/_stcore/health (s)"))
SHARES = (("server", "Page server process"), ("ray", "Ray (side process, head, workers)"),
          ("bench", "This benchmark + Chromium"), ("others", "Everything else on the machine"),
          ("machine", "Whole machine"),
          ("waiting", "Page server waiting for a CPU (threads, s/s)"))


def cpu_series(phase: Phase, key: str) -> list:
    if key == "others":
        return [max(s["machine"] - s["server"] - s["ray"] - s["bench"], 0.0) for s in phase.cpu]
    return [s[key] for s in phase.cpu]


def report(idle: Phase, busy: Phase, title: str) -> dict:
    """Print one repeat's tables; returns its figures for the summary."""
    out = {}
    print(f"\n{title}")
    print(f"  idle: {len(idle.load)} loads, {len(idle.rerun)} reruns, {len(idle.health)} health probes, "
          f"{len(idle.cpu)} CPU samples over {idle.seconds:.0f} s; busy: {len(busy.load)}, {len(busy.rerun)}, "
          f"{len(busy.health)}, {len(busy.cpu)} over {busy.seconds:.0f} s")
    print(f"  {'':34} {'idle p50':>8} {'p95':>6} {'max':>6}   {'busy p50':>8} {'p95':>6} {'max':>6}   "
          f"{'ratio p50':>9} {'p95':>6}   target (busy)")
    for key, label in LATENCIES:
        i, b = stats(getattr(idle, key)), stats(getattr(busy, key))
        out[key] = {"idle": i, "busy": b}
        target = ""
        if key in TARGETS:
            ok, target = verdict(key, b)
            out[key]["ok"] = ok
        fails = [f"{p.failed.get(key, 0)} {p.name}" for p in (idle, busy) if p.failed.get(key)]
        print(f"  {label:34} {i['p50']:8.3f} {i['p95']:6.3f} {i['max']:6.3f}   {b['p50']:8.3f} {b['p95']:6.3f} "
              f"{b['max']:6.3f}   {ratio(b['p50'], i['p50']):>9} {ratio(b['p95'], i['p95']):>6}   {target}"
              + (f"  (timed out/failed: {', '.join(fails)})" if fails else ""))
    slow = sum(s > TARGETS["health"][1] for s in busy.health)
    print(f"  health probes over 0.5 s: {sum(s > 0.5 for s in idle.health)} of {len(idle.health)} idle, "
          f"{slow} of {len(busy.health)} busy")
    print(f"\n  CPU, % of the whole machine ({NCPU} CPUs){'':8} {'idle mean':>9} {'p95':>6}   {'busy mean':>9} "
          f"{'p95':>6}   {'ratio':>6}   target (busy)")
    for key, label in SHARES:
        i, b = stats(cpu_series(idle, key)), stats(cpu_series(busy, key))
        out[key] = {"idle": i, "busy": b}
        target = ""
        if key in TARGETS:
            ok, target = verdict(key, b)
            out[key]["ok"] = ok
        d = 2 if key == "waiting" else 1  # thread-seconds per second, not %
        print(f"  {label:46} {i['mean']:9.{d}f} {i['p95']:6.{d}f}   {b['mean']:9.{d}f} {b['p95']:6.{d}f}   "
              f"{ratio(b['mean'], i['mean']):>6}   {target}")
    others = stats(cpu_series(busy, "others"))["mean"]
    if others > 10:
        print(f"  note: other processes took {others:.0f}% of the machine meanwhile: these figures say how the app "
              "shares a busy machine, not how it does on an idle one")
    for note in idle.notes + busy.notes:
        print(f"  {note}")
    return out


def measure_stand_ins(browser, url: str, args, idle_load: dict) -> dict:
    """Page loads while each kind of stand-in runs (StandIns); prints them beside the idle phase's."""
    out = {}
    for kind in STAND_INS:
        stand_ins = StandIns(kind)
        try:
            stand_ins.busy()
            load, _, failed, _ = measure_loads(browser, url, args.loads, 1, args.timeout)
        finally:
            stand_ins.stop()
        out[kind] = st = stats(load)
        print(f"  page load while two idle-priority stand-ins ({kind}) run, no job: p50 {st['p50']:.3f} p95 "
              f"{st['p95']:.3f} max {st['max']:.3f} s; over idle {ratio(st['p50'], idle_load['p50']).strip()} p50, "
              f"{ratio(st['p95'], idle_load['p95']).strip()} p95" + (f" ({failed} timed out)" if failed else ""))
    return out


def summary(results: list) -> None:
    print(f"\nOver {len(results)} repeats: the spread (min-max) of each p95 (CPU: of each mean), and the repeats "
          "that met the target")
    for key, label in LATENCIES + SHARES:
        stat = "mean" if key in dict(SHARES) else "p95"
        idle = [r[key]["idle"][stat] for r in results]
        busy = [r[key]["busy"][stat] for r in results]
        met = f"{sum(r[key].get('ok', False) for r in results)} of {len(results)} met {TARGETS[key][2]}" \
            if key in TARGETS else ""
        d = 3 if stat == "p95" else 2 if key == "waiting" else 1
        spread = f"idle {min(idle):.{d}f}-{max(idle):.{d}f}"
        print(f"  {label.strip():46} {spread:<20} busy {min(busy):.{d}f}-{max(busy):.{d}f}".ljust(96) + met)
    for kind in STAND_INS:
        p95 = [r["stand-ins"][kind]["p95"] for r in results if "stand-ins" in r]
        if p95:
            print(f"  {'Page load, stand-ins (' + kind + ') instead of jobs':46} p95 {min(p95):.3f}-{max(p95):.3f}")


# ============================================================================ cleanup


def leftover_processes(cpu: CpuSampler, local_ray: bool) -> list:
    """Processes of the server's tree, or of its local Ray's sessions, still alive (zombies excepted)."""
    left = []
    for p in psutil.process_iter(["pid", "cmdline", "status", "create_time"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE or p.pid == os.getpid():
                continue
            cmd = " ".join(p.info["cmdline"] or [])
            if (p.pid, p.info["create_time"]) in cpu.seen or (local_ray and any(s in cmd for s in cpu.sessions)):
                left.append(p)
        except psutil.Error:
            continue
    return left


def check_leftovers(cpu: CpuSampler, local_ray: bool) -> None:
    deadline = time.monotonic() + LEFTOVER_S
    while True:
        left = leftover_processes(cpu, local_ray)
        if not left:
            print(f"  cleanup: the server and its {len(cpu.seen)} descendant processes"
                  f"{' (its local Ray: ' + ', '.join(sorted(cpu.sessions)) + ')' if cpu.sessions else ''} are gone")
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(f"  cleanup: PROBLEM: {len(left)} process(es) of the server's Ray outlived it by {LEFTOVER_S} s; ending them:")
    for p in left:
        try:
            print(f"    pid {p.pid}: {' '.join(p.cmdline())[:160]}")
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(left, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass


# ============================================================================ main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=12, help="page loads per phase (default 12)")
    parser.add_argument("--reruns", type=int, default=12, help="Filters reruns per phase (default 12)")
    parser.add_argument("--repeats", type=int, default=1, help="idle+busy measurements (default 1)")
    parser.add_argument("--epochs", type=int, default=100, help="Epochs of the two training runs (default 100, "
                                                                "the page's most): they must outlast the phase")
    parser.add_argument("--train-images", type=int, default=60000,
                        help="Training images of the two runs, one of the page's choices (default 60000: an epoch "
                             "lasts long enough that 100 of them outlast the phase; with the page's 5000 they did not)")
    parser.add_argument("--trainer-browsers", choices=("idle", "normal"), default="idle",
                        help="the scheduling priority of the trainers' Chromium (default idle: their browsers stand "
                             "for the students' own machines; normal: they share the server's CPUs as equals)")
    parser.add_argument("--stand-ins", action="store_true",
                        help="also measure page loads, once the jobs have stopped, while two idle-priority processes "
                             "that are not the app run flat out: pure CPU, then streaming memory (what any such work "
                             "costs the pages on this machine)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a page load or rerun may take (60)")
    parser.add_argument("--ray-address", default=None, help="a Ray cluster for the jobs (default: the app's local Ray)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (server log, workspaces)")
    args = parser.parse_args(argv)
    args.loads, args.reruns, args.repeats = max(1, args.loads), max(1, args.reruns), max(1, args.repeats)
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM} (set CHROMIUM)", file=sys.stderr)
        return 2
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="cvx-responsiveness-"))
    server = AppServer(folder, args.ray_address)
    health = cpu = None
    trainers = []
    failed = True
    print(f"ConvNet Explorer responsiveness: {args.loads} page loads and {args.reruns} Filters reruns per phase, "
          f"idle, then while two users train (Fashion-MNIST, {args.epochs} epochs; their browsers at "
          f"{args.trainer_browsers} priority); {args.repeats} repeat(s); "
          f"{NCPU} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    try:
        t = time.monotonic()
        server.start()
        print(f"  server: {server.url} (pid {server.proc.pid}), healthy after {time.monotonic() - t:.1f} s; "
              f"log {server.log}")
        health, cpu = HealthSampler(server.port), CpuSampler(server.proc.pid)
        health.start()
        cpu.start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            trainer_browser = pw.chromium.launch(executable_path=trainer_chromium(folder, args.trainer_browsers),
                                                 args=CHROMIUM_ARGS)
            try:
                t = time.monotonic()
                line = wait_jobs_ready(browser, server.url, args.timeout)
                print(f"  sidebar: \"{line}\" after {time.monotonic() - t:.1f} s")
                print(f"  quiet after {wait_quiet(cpu, 'the jobs were ready'):.1f} s more")
                results = []
                for r in range(1, args.repeats + 1):
                    if r > 1:
                        print(f"  quiet after {wait_quiet(cpu, 'the jobs stopped'):.1f} s")
                    print(f"repeat {r}: idle phase…", flush=True)
                    idle = run_phase("idle", browser, server, health, cpu, args)
                    print(f"repeat {r}: starting two training runs…", flush=True)
                    trainers = [Trainer(trainer_browser, server.url, f"trainer-{k}") for k in (1, 2)]
                    t = time.monotonic()
                    for tr in trainers:
                        tr.start(args.epochs, args.train_images, args.timeout)
                    deadline = time.monotonic() + TRAIN_START_S
                    before = [tr.wait_training(deadline) for tr in trainers]
                    print(f"  both training after {time.monotonic() - t:.1f} s; busy phase…", flush=True)
                    t_busy, ended = time.monotonic(), {}
                    polls = [run_count(tr.page) for tr in trainers]

                    def check():  # after each load and rerun: is each job still training?
                        for tr in trainers:
                            if tr.name not in ended and "Epoch" not in (tr.progress() or ""):
                                ended[tr.name] = time.monotonic() - t_busy

                    busy = run_phase("busy", browser, server, health, cpu, args, check)
                    check()
                    after = [tr.progress() for tr in trainers]
                    seconds = time.monotonic() - t_busy
                    for tr, b, a, n in zip(trainers, before, after, polls):
                        state = ("trained throughout" if tr.name not in ended else
                                 f"NOT TRAINING {ended[tr.name]:.0f} s into the phase: the busy figures are not valid")
                        busy.notes.append(f"{tr.name} ({args.trainer_browsers} priority): {state}; "
                                          f"{(run_count(tr.page) - n) / seconds:.2f} fragment runs/s; "
                                          f"at the start \"{b}\", at the end \"{a}\"")
                    for tr in trainers:
                        tr.stop()
                        tr.close()
                    trainers = []
                    results.append(report(idle, busy, f"Repeat {r} of {args.repeats}: idle vs two training jobs"))
                    if args.stand_ins:
                        print(f"  quiet after {wait_quiet(cpu, 'the jobs stopped'):.1f} s")
                        results[-1]["stand-ins"] = measure_stand_ins(browser, server.url, args, stats(idle.load))
                if len(results) > 1:
                    summary(results)
                failed = False
            finally:
                for tr in trainers:  # an error mid-phase: stop the jobs before the server goes
                    tr.stop()
                    tr.close()
                browser.close()
                trainer_browser.close()
    except BenchError as err:
        print(f"\nERROR: {err}", file=sys.stderr)
    except PlaywrightError as err:  # a browser step outside the measured ones (their timeouts are counted)
        print(f"\nERROR: a browser step failed: {type(err).__name__}: {err}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
    finally:
        if health is not None:
            health.stop()
        if cpu is not None:
            cpu.stop()
        if failed and server.proc is not None:
            print(f"server log (last lines):\n{log_tail(server.log, 2000)}", file=sys.stderr)
        server.stop()
        if cpu is not None:
            check_leftovers(cpu, local_ray=not args.ray_address)
        if args.keep or failed:
            print(f"  kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

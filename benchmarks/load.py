"""A class on the class server: many sessions clicking at once while training jobs run.

Starts a class server as ``scripts/serve.sh`` does (:class:`classserver.supervisor.ClassServer`: a Ray
head, page servers, HAProxy) in a temporary state folder, once with one page server and once with
``--page-servers`` (default: the class server's own default), and at each session count of
``--sessions`` (default 20 40 60):

* ``--jobs`` training jobs (default 2) run all along: the Train page's own job (``cvcore.runs:train_job``,
  Fashion-MNIST, 60,000 images, fast), submitted to the class server's queue as a student's page does;
* ``--browsers`` sessions (default 4) are real headless Chromium (Debian's, through Playwright), one
  browser each; the others speak Streamlit's websocket protocol through the proxy as the browser does
  (:mod:`benchmarks.wsclient`), and fire the pages' ``run_every`` fragments;
* each session opens the Filters page, then the Train page, then Filters again (page loads: for a browser
  from navigation until the page's first metric or title has rendered; for a protocol session from the
  HTTP request until its script run ended), then reruns Filters once a second (flipping Padding) for
  ``--seconds`` (default 120) after ``--warmup`` (default 20 s, while the sessions arrive).

Prints, per page-server count and session count: sessions held (working at the end), errors (a run that
failed, showed an exception, or took over ``--timeout``), page load and rerun p50/p95/p99, each page
server's memory, the jobs' queue waits, and how much CPU the load generator itself used (this process and
its Chromium), against the target on the 2-core CI machine: 20 sessions with two jobs training, 0 errors,
rerun p95 at most 2 s. It asserts nothing.

Usage:
    .venv/bin/python benchmarks/load.py [--sessions 20 40 60] [--browsers 4] [--jobs 2] [--seconds 120]
        [--warmup 20] [--page-servers N] [--no-single] [--timeout 30]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests")]

from responsiveness import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from pagewatch import COUNT_RUNS  # noqa: E402 (counts script runs ended)
from wsclient import ProtocolError, ProtocolSession  # noqa: E402

from classserver.config import ClassConfig, default_page_servers  # noqa: E402
from classserver.supervisor import ClassServer, free_port, marked_processes  # noqa: E402

IDLE = "() => document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState === 'notRunning'"


class Tally:
    """What every session measured, shared by their threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.loads, self.reruns, self.errors = [], [], []
        self.by_page: dict[str, list] = {}
        self.measuring = False

    def add(self, kind: str, seconds: float, label: str = "") -> None:
        with self.lock:
            if kind == "load":
                self.loads.append(seconds)
                self.by_page.setdefault(label, []).append(seconds)
            elif self.measuring:
                self.reruns.append(seconds)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


def protocol_user(url: str, tally: Tally, stop: threading.Event, timeout: float, held: list) -> None:
    s = ProtocolSession(url, timeout=timeout)
    try:
        for page in ("filters", "train", "filters"):
            tally.add("load", s.open(page) if page == "filters" and s.page == "" else s.run(page), f"protocol {page}")
        fragments_last, padding = {}, "same"
        while not stop.is_set():
            t0 = time.monotonic()
            tally.add("rerun", s.run(widget=("Padding", padding)))
            padding = "valid" if padding == "same" else "same"
            for fragment in s.due_fragments(fragments_last, time.monotonic()):
                s.run(fragment_id=fragment)
            stop.wait(max(0.0, 1.0 - (time.monotonic() - t0)))
        held.append(True)
    except ProtocolError as err:
        tally.error(f"protocol session: {err}")
    except Exception as err:  # noqa: BLE001 - a benchmark counts every failure, whatever it is
        tally.error(f"protocol session: {type(err).__name__}: {err}")
    finally:
        s.close()


def browser_user(url: str, tally: Tally, stop: threading.Event, timeout: float, held: list, shots: Path, n: int):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        stage, page = "opening", None
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.add_init_script(f"({COUNT_RUNS})()")
            ms = timeout * 1000
            for path, ready in (("/filters", '[data-testid="stMetric"]'), ("/train", "h1"),
                                ("/filters", '[data-testid="stMetric"]')):
                stage = f"loading {path}"
                t0 = time.perf_counter()
                page.goto(url + path + ("?" + page.url.split("?", 1)[1] if "?" in page.url else ""),
                          wait_until="commit", timeout=ms)
                page.locator(ready).first.wait_for(timeout=ms)
                tally.add("load", time.perf_counter() - t0, f"Chromium {path[1:]}")
                page.wait_for_function(IDLE, timeout=ms, polling=50)
            radio = page.locator('[data-testid="stRadio"]', has_text="Padding")
            padding, stage = "same", "rerunning"
            while not stop.is_set():
                t0 = time.perf_counter()
                runs = page.evaluate("() => window.__cvRuns")
                radio.get_by_text(padding, exact=True).click(timeout=ms)
                page.wait_for_function("n => window.__cvRuns > n", arg=runs, timeout=ms, polling=20)
                tally.add("rerun", time.perf_counter() - t0)
                padding = "valid" if padding == "same" else "same"
                if page.locator('[data-testid="stException"]').count():
                    raise RuntimeError(page.locator('[data-testid="stException"]').first.inner_text()[:300])
                stop.wait(max(0.0, 1.0 - (time.perf_counter() - t0)))
            page.screenshot(path=str(shots / f"browser-{n}.png"))
            held.append(True)
        except Exception as err:  # noqa: BLE001
            tally.error(f"browser session {n} ({stage}): {type(err).__name__}: {str(err)[:200]}; "
                        f"screenshot {shots / f'browser-{n}-error.png'}")
            try:
                page.screenshot(path=str(shots / f"browser-{n}-error.png"))
            except Exception:  # noqa: BLE001
                pass
        finally:
            browser.close()


def start_jobs(server: ClassServer, k: int):
    """``k`` Train-page jobs on the class server's queue, as k students' pages submit them."""
    from cvcore.jobs import JobClient
    from cvcore.models import PRESETS
    from cvcore.runs import RunConfig
    from cvcore.workspace import Store, new_token

    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=(server.folder / "ray-token").read_text().strip())
    client = JobClient(server.ray_address, log_dir=server.logs)
    deadline = time.monotonic() + 180
    while client.status().get("state") != "ready":
        if time.monotonic() > deadline:
            raise RuntimeError(f"the class server's job service did not become ready: {client.status()}")
        time.sleep(0.5)
    config = RunConfig(spec=PRESETS["Basic CNN (6 and 12 filters)"], dataset="fashion_mnist", n_train=60000,
                       n_val=10000, epochs=100, batch_size=32, fast=True, seed=0)
    store = Store(server.state / "workspaces")
    jobs = []
    for i in range(k):
        ws = store.anonymous(new_token())
        jobs.append(client.submit(ws.id, "cvcore.runs:train_job", {"workspace": ws.ref(), "config": config.as_dict(),
                                                                   "name": f"Load {i + 1}", "title": "load"},
                                  name=f"load trainer {i + 1}", kind="train"))
    deadline = time.monotonic() + 180
    while not all((client.get(j.id).progress or {}).get("epoch") for j in jobs):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the load's training jobs did not start: {[client.get(j.id) for j in jobs]}")
        time.sleep(1)
    return client, jobs


def pct(values, q):
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def cpu_seconds(procs) -> dict:
    """CPU seconds so far of each process, by pid."""
    found = {}
    for p in procs:
        try:
            t = p.cpu_times()
            found[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return found


def cpu_used(before: dict, after: dict) -> float:
    """CPU seconds between two :func:`cpu_seconds`: a process that ended meanwhile counts up to its last reading,
    one that began counts whole."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def server_procs(server: ClassServer):
    """The class server's processes (page servers, HAProxy, Ray's head and workers: its marker's)."""
    found = []
    for pid in marked_processes(server.marker):
        try:
            found.append(psutil.Process(pid))
        except psutil.Error:
            pass
    return found


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all CPUs)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)


def prime(server: ClassServer, timeout: float) -> None:
    """Open Filters and Train once on each page server, as a teacher does before class: the first visit to a
    page server imports TensorFlow and loads the data sets."""
    for ps in server.page_servers:
        s = ProtocolSession(ps.url, timeout=max(timeout, 120))
        try:
            s.open("filters")
            s.run("train")
        finally:
            s.close()


def run_load(server: ClassServer, sessions: int, browsers: int, args, shots: Path) -> dict:
    tally, stop, held = Tally(), threading.Event(), []
    browsers = min(browsers, sessions)
    threads = [threading.Thread(target=browser_user, args=(server.url, tally, stop, args.timeout, held, shots, i),
                                daemon=True) for i in range(browsers)]
    threads += [threading.Thread(target=protocol_user, args=(server.url, tally, stop, args.timeout, held), daemon=True)
                for _ in range(sessions - browsers)]
    random.shuffle(threads)
    for t in threads:  # the class arrives over the warm-up
        t.start()
        time.sleep(args.warmup / max(1, len(threads)))
    time.sleep(min(5.0, args.warmup))
    cpu0, busy0, wall0 = cpu_seconds(server_procs(server)), machine_busy_seconds(), time.monotonic()
    with tally.lock:
        tally.measuring = True
    time.sleep(args.seconds)
    span = (time.monotonic() - wall0) * psutil.cpu_count() / 100  # seconds of all CPUs per percent
    server_cpu = cpu_used(cpu0, cpu_seconds(server_procs(server))) / span
    machine_cpu = (machine_busy_seconds() - busy0) / span
    generator_cpu = machine_cpu - server_cpu  # the machine is otherwise quiet: the rest is the load generator
    page_rss = {}
    for pid in marked_processes(server.marker):
        try:
            proc = psutil.Process(pid)
            env = proc.environ()
            if "streamlit" in " ".join(proc.cmdline()) and env.get("CVCORE_PAGE_SERVER"):
                page_rss[env["CVCORE_PAGE_SERVER"]] = proc.memory_info().rss / 1024**2
        except psutil.Error:
            pass
    stop.set()
    for t in threads:
        t.join(args.timeout + 10)
    return {"sessions": sessions, "browsers": browsers, "held": len(held), "errors": list(tally.errors),
            "loads": tally.loads, "by_page": tally.by_page, "reruns": tally.reruns, "generator_cpu": generator_cpu, "server_cpu": server_cpu,
            "machine_cpu": machine_cpu, "page_rss": page_rss}


def report(n_servers: int, r: dict, waits: list) -> None:
    loads, reruns = r["loads"], r["reruns"]
    rss = ", ".join(f"{k} {v:,.0f} MB" for k, v in sorted(r["page_rss"].items()))
    target = ""
    if r["sessions"] == 20:
        ok = not r["errors"] and pct(reruns, 95) <= 2.0 and r["held"] == r["sessions"]
        target = f"   target (20 sessions: 0 errors, rerun p95 <= 2 s): {'PASS' if ok else 'MISS'}"
    print(f"  {n_servers} page server(s), {r['sessions']} sessions ({r['browsers']} Chromium, "
          f"{r['sessions'] - r['browsers']} protocol): held {r['held']}, errors {len(r['errors'])}{target}")
    print(f"    page load (s) p50 {pct(loads, 50):.2f}  p95 {pct(loads, 95):.2f}  p99 {pct(loads, 99):.2f}  "
          f"({len(loads)} loads: " + "; ".join(f"{k} p50 {pct(v, 50):.2f} max {max(v):.2f}"
                                              for k, v in sorted(r["by_page"].items())) + ")")
    print(f"    rerun (s)     p50 {pct(reruns, 50):.2f}  p95 {pct(reruns, 95):.2f}  p99 {pct(reruns, 99):.2f}  "
          f"({len(reruns)} reruns, {len(reruns) / max(1, r['sessions']):.0f} per session)")
    print(f"    CPU, % of the machine: all {r['machine_cpu']:.0f}, the class server (page servers, proxy, Ray "
          f"and the jobs) {r['server_cpu']:.0f}, the rest (this load generator and its Chromium) "
          f"{r['generator_cpu']:.0f}")
    print(f"    page servers' memory: {rss}; jobs' queue waits: " + ", ".join(f"{w:.1f} s" for w in waits))
    for e in r["errors"][:5]:
        print(f"    error: {e}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[20, 40, 60])
    parser.add_argument("--browsers", type=int, default=4, help="real Chromium sessions (default 4)")
    parser.add_argument("--jobs", type=int, default=2, help="training jobs running all along (default 2)")
    parser.add_argument("--seconds", type=float, default=120, help="measured seconds per session count")
    parser.add_argument("--warmup", type=float, default=20, help="seconds over which the sessions arrive")
    parser.add_argument("--page-servers", type=int, default=default_page_servers())
    parser.add_argument("--no-single", action="store_true", help="skip the one-page-server comparison")
    parser.add_argument("--timeout", type=float, default=30, help="a run slower than this is an error")
    args = parser.parse_args(argv)
    shots = ROOT / "build" / "load"
    shots.mkdir(parents=True, exist_ok=True)
    counts = [args.page_servers] if args.no_single or args.page_servers == 1 else [1, args.page_servers]
    print(f"ConvNet Explorer class server under load: {psutil.cpu_count()} CPUs, {args.jobs} training jobs, "
          f"{args.browsers} Chromium sessions and the rest over the websocket protocol, {args.seconds:.0f} s "
          f"measured after {args.warmup:.0f} s of arrivals; page servers: {counts}", flush=True)
    for n in counts:
        state = Path(tempfile.mkdtemp(prefix="cvx-load-"))
        config = ClassConfig(port=free_port(), host="127.0.0.1", page_servers=n, max_sessions=10_000,
                             max_running=max(2, args.jobs), ray_object_store_mb=300)
        server = ClassServer(config, state=state)
        t0 = time.monotonic()
        server.start()
        print(f"\n{n} page server(s): up after {time.monotonic() - t0:.0f} s at {server.url}", flush=True)
        client = None
        try:
            prime(server, args.timeout)
            client, jobs = start_jobs(server, args.jobs)
            waits = [(client.get(j.id).started or 0) - (client.get(j.id).created or 0) for j in jobs]
            for sessions in args.sessions:
                report(n, run_load(server, sessions, args.browsers, args, shots), waits)
                sys.stdout.flush()
                for j in jobs:
                    if client.get(j.id).status != "running":
                        print(f"    note: {j.name} is {client.get(j.id).status}: {client.get(j.id).error}")
        finally:
            if client is not None:
                client.close()
            left = server.stop()
            print(f"  stopped{'; killed leftovers ' + str(left) if left else ': nothing left running'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

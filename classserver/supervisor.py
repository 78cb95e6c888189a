"""Start and stop a whole class server on one machine: a Ray head, N page servers and HAProxy.

What :class:`ClassServer` starts, in order:

1. a Ray head for the jobs (``ray start --head --block``, token authentication, no dashboard);
2. N Streamlit processes (``streamlit run app.py``) on 127.0.0.1, sharing one cookie secret (so a
   sign-in and Streamlit's upload protection hold on any of them), the workspace store
   (``$CVCORE_STATE_DIR``), the Ray head (``RAY_ADDRESS``) and the job limits of ``class.toml``;
3. HAProxy in front (:mod:`classserver.proxy`).

Secrets (the cookie secret, Ray's token, the operator token) are made once and kept in
``$CVCORE_STATE_DIR/class-server/``, readable by the owner only; none goes on a command line or in
a log. Every process started carries a marker in its environment (``CVX_CLASS_SERVER``), so
:meth:`ClassServer.stop` can find and end anything left behind, Ray's workers included.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cvcore.errors import CvcoreError
from cvcore.workspace import state_dir

from .config import ClassConfig
from .proxy import haproxy_binary, haproxy_config

__all__ = ["ClassServer", "ClassServerError", "PageServer", "free_port", "marked_processes", "MARKER"]

ROOT = Path(__file__).resolve().parent.parent
MARKER = "CVX_CLASS_SERVER"


class ClassServerError(CvcoreError):
    """The class server could not start: what is missing or failed, and what to do."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _secret(folder: Path, name: str, nbytes: int = 32) -> str:
    """A secret kept in ``folder/name`` (owner-only), made on first use."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(nbytes))
    return path.read_text().strip()


def _healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def marked_processes(marker_value: str) -> list[int]:
    """Pids of processes (not this one) whose environment carries ``CVX_CLASS_SERVER=marker_value``."""
    needle = f"{MARKER}={marker_value}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes() + b"\0":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@dataclass
class PageServer:
    """One Streamlit process: its name (the proxy's cookie value), port and process."""

    name: str
    port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class ClassServer:
    """A class server on this machine; :meth:`start`, then :meth:`stop` (also on SIGINT or SIGTERM in ``main``).

    Args:
        config: the operator's settings (:class:`classserver.config.ClassConfig`).
        state: the shared state folder (workspaces, secrets, logs); default ``$CVCORE_STATE_DIR``.
        env: extra environment for every process.
    """

    def __init__(self, config: ClassConfig, *, state: str | os.PathLike | None = None, env: dict | None = None):
        self.config = config
        self.state = Path(state) if state else state_dir()
        self.extra_env = dict(env or {})
        # Given by whoever started us (a test, a service manager) to find our processes too; else our own.
        self.marker = os.environ.get(MARKER) or secrets.token_hex(8)
        self.folder = self.state / "class-server"
        self.logs = self.folder / "logs"
        self.page_servers: list[PageServer] = []
        self.ray_proc: subprocess.Popen | None = None
        self.proxy_proc: subprocess.Popen | None = None
        self.ray_address = ""

    # ------------------------------------------------------------------ start
    def start(self, timeout: float = 180.0) -> "ClassServer":
        """Start everything, and return once the proxy answers and every page server is healthy.

        Raises:
            ClassServerError: HAProxy is missing, a port is taken, or a process did not come up (its log is named).
        """
        haproxy = haproxy_binary()
        if haproxy is None:
            raise ClassServerError("HAProxy is not installed: run `sudo apt-get install haproxy` (Debian, Ubuntu), "
                                   "or `bash scripts/setup.sh --class`.")
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.logs.mkdir(exist_ok=True)
        deadline = time.monotonic() + timeout
        try:
            self._start_ray(deadline)
            self._start_page_servers()
            self._start_proxy(haproxy)
            for ps in self.page_servers:
                self._wait(lambda ps=ps: _healthy(ps.url + "/_stcore/health"), deadline, ps.proc,
                           f"page server {ps.name}", self.logs / f"{ps.name}.log")
            self._wait(lambda: _healthy(self.url + "/_stcore/health"), deadline, self.proxy_proc, "HAProxy",
                       self.logs / "haproxy.log")
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def url(self) -> str:
        """Where students go (the proxy)."""
        scheme = "https" if self.config.tls_pem else "http"
        host = "127.0.0.1" if self.config.host in ("0.0.0.0", "::") else self.config.host
        return f"{scheme}://{host}:{self.config.port}"

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # our own head, not another's
        env = {**env, **self.extra_env, MARKER: self.marker,
               "CVCORE_STATE_DIR": str(self.state), "RAY_AUTH_MODE": "token",
               "RAY_AUTH_TOKEN": _secret(self.folder, "ray-token"),
               # No 30 s drain on SIGTERM (Ray waits so for Serve's replicas, which the app does not run).
               "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0", "RAY_USAGE_STATS_ENABLED": "0"}
        env.update(self.config.environment())
        env["CVCORE_OPERATOR_TOKEN_FILE"] = str(self.operator_token_file)
        return env

    @property
    def operator_token_file(self) -> Path:
        """The operator token's file (made on first start; owner-only): an operator types its contents."""
        path = self.config.operator_token_path(self.state)
        _secret(path.parent, path.name)
        return path

    def _spawn(self, argv: list, log_name: str, env: dict) -> subprocess.Popen:
        log = open(self.logs / log_name, "ab")
        try:
            return subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()

    def _start_ray(self, deadline: float) -> None:
        ray = str(Path(sys.executable).with_name("ray"))
        port = int(self.ray_address.rsplit(":", 1)[1]) if self.ray_address else free_port()  # a restart: the same
        argv = [ray, "start", "--head", "--block", f"--port={port}", "--include-dashboard=false",
                "--disable-usage-stats", f"--node-manager-port={free_port()}",
                f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
                f"--dashboard-agent-grpc-port={free_port()}", f"--metrics-export-port={free_port()}",
                f"--runtime-env-agent-port={free_port()}"]
        if self.config.ray_cpus:
            argv.append(f"--num-cpus={self.config.ray_cpus}")
        if self.config.ray_object_store_mb:
            argv.append(f"--object-store-memory={self.config.ray_object_store_mb * 1024**2}")
        env = self._env()
        self.ray_proc = self._spawn(argv, "ray-head.log", env)
        self.ray_address = f"127.0.0.1:{port}"
        self._wait(lambda: subprocess.run([ray, "health-check", f"--address={self.ray_address}"], env=env,
                                          capture_output=True).returncode == 0,
                   deadline, self.ray_proc, "the Ray head", self.logs / "ray-head.log")

    def _start_page_servers(self) -> None:
        env = {**self._env(), "RAY_ADDRESS": self.ray_address,
               # One cookie secret for all: a sign-in, and Streamlit's XSRF cookie, hold on any page server.
               "STREAMLIT_SERVER_COOKIE_SECRET": _secret(self.folder, "cookie-secret")}
        streamlit = str(Path(sys.executable).with_name("streamlit"))
        for i in range(self.config.resolved_page_servers()):
            ps = PageServer(name=f"p{i + 1}", port=free_port())
            ps.proc = self._spawn([streamlit, "run", "app.py", f"--server.port={ps.port}",
                                   "--server.address=127.0.0.1", "--server.headless=true"],
                                  f"{ps.name}.log", {**env, "CVCORE_PAGE_SERVER": ps.name})
            self.page_servers.append(ps)

    def _start_proxy(self, haproxy: str) -> None:
        cfg = self.folder / "haproxy.cfg"
        cfg.write_text(haproxy_config(self.config.host, self.config.port,
                                      [(ps.name, ps.port) for ps in self.page_servers],
                                      tls_pem=self.config.tls_pem))
        check = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            alerts = [line for line in (check.stdout + check.stderr).splitlines() if "ALERT" in line]
            raise ClassServerError(f"HAProxy refused its configuration ({cfg}): {' '.join(alerts[:3])}")
        self.proxy_proc = self._spawn([haproxy, "-db", "-f", str(cfg)], "haproxy.log", self._env())

    def _wait(self, ready, deadline: float, proc, what: str, log: Path) -> None:
        while not ready():
            if proc is not None and proc.poll() is not None:
                raise ClassServerError(f"{what} ended at start (exit code {proc.returncode}); see {log}.")
            if time.monotonic() > deadline:
                raise ClassServerError(f"{what} did not come up in time; see {log}.")
            time.sleep(0.2)

    # ------------------------------------------------------------------ faults and stop
    def ray_lost(self) -> bool:
        """Whether the Ray head's process has ended."""
        return self.ray_proc is not None and self.ray_proc.poll() is not None

    def restart_ray(self, timeout: float = 120.0) -> None:
        """Start the Ray head again at the same address (its page servers find it there). Running jobs were
        lost with it and their runs read as interrupted; the page servers submit their waiting jobs again.

        Raises:
            ClassServerError: the head did not come back (its log is named).
        """
        if self.ray_proc is not None and self.ray_proc.poll() is None:
            self.ray_proc.send_signal(signal.SIGTERM)
            self.ray_proc.wait(30)
        self._start_ray(time.monotonic() + timeout)
    def kill_page_server(self, name: str) -> None:
        """End one page server at once (SIGKILL), as a crash would: for tests and drills."""
        ps = next(p for p in self.page_servers if p.name == name)
        os.killpg(ps.proc.pid, signal.SIGKILL)
        ps.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> list[int]:
        """Stop the proxy, the page servers and the Ray head, then anything else carrying this server's marker.

        Returns:
            The pids that had to be killed after the others had stopped (normally none).
        """
        procs = [self.proxy_proc, *(ps.proc for ps in self.page_servers)]
        for proc in procs:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        if self.ray_proc is not None and self.ray_proc.poll() is None:
            self.ray_proc.send_signal(signal.SIGTERM)  # `ray start --block` stops its processes in order
        end = time.monotonic() + timeout
        for proc in [*procs, self.ray_proc]:
            if proc is None:
                continue
            try:
                proc.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.wait(5)
        stragglers = []
        end = time.monotonic() + 5
        while time.monotonic() < end:
            stragglers = marked_processes(self.marker)
            if not stragglers:
                break
            time.sleep(0.2)
        for pid in stragglers:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return stragglers

"""The job service's side process: one page server's Ray driver (``python -m cvcore.jobgate``).

:class:`cvcore.jobs.JobClient` starts it and talks to it over a local socket
(an authenticated :mod:`multiprocessing.connection`). It joins the cluster at
``$RAY_ADDRESS`` (Ray reads ``RAY_AUTH_TOKEN`` itself) or starts a local Ray
instance without a dashboard, finds or creates the server's queue actor
(:mod:`cvcore.jobqueue`), checks that a worker can run a job, and warms
workers so that the first job starts at once. Then it relays the page
server's requests to the queue.

It ends itself when Ray is lost (a driver whose head has gone cannot come
back) or when its page server has gone; the client starts a new one on its
next call, so the page server never goes down with Ray.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
import time
import traceback
from multiprocessing.connection import Listener
from pathlib import Path

# A failed start keeps its message this long for the pages, then the side process ends and the next call tries again.
FAILED_EXIT_AFTER_S = float(os.environ.get("CVCORE_JOB_RETRY_S", 20))
PING_EVERY_S = 2.0
PINGS_LOST = 2  # consecutive failed pings: Ray is gone


class _Unavailable(Exception):
    pass


class _Busy(Exception):
    def __init__(self, job, count: int):
        super().__init__("busy")
        self.job, self.count = job, count

    def message(self) -> str:
        if self.count <= 1:
            return (f"Your workspace already has a {self.job['status']} job ({self.job['name']}); "
                    "stop it or wait for it to end before starting another.")
        return (f"Your workspace already has {self.count} jobs queued or running, the most this server allows "
                "per user; stop one or wait for one to end before starting another.")


def _log(message: str) -> None:
    print(time.strftime("%Y-%m-%d %H:%M:%S"), f"[jobgate {os.getpid()}]", message, file=sys.stderr, flush=True)


class Gate:
    def __init__(self, settings: dict):
        self.settings = settings
        self.address = os.environ.get("RAY_ADDRESS") or None
        self.parent = os.getppid()
        self.state, self.message = "starting", "Ray is starting (the first time takes a few seconds)…"
        self.queue = None
        self.info: dict = {}

    # -- start-up
    def connect(self) -> None:
        try:
            self._connect()
        except Exception as err:  # say why, keep saying it a while, then let the client try again
            self.state = "failed"
            self.message = str(err) if isinstance(err, _Unavailable) else f"Ray could not start: {type(err).__name__}: {err}"
            _log(self.message + "\n" + traceback.format_exc())
            time.sleep(FAILED_EXIT_AFTER_S)
            os._exit(2)

    def _runtime_env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if k.startswith(("CVCORE_", "KERAS_", "TF_")) and not k.startswith("CVCORE_JOBGATE")}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"  # set before TensorFlow touches a GPU: jobs share the card
        runtime_env = {"env_vars": env}
        if self.address:  # a worker on another node imports this very cvcore, shipped with the jobs
            runtime_env["py_modules"] = [str(Path(__file__).resolve().parent)]
            runtime_env["excludes"] = ["__pycache__", "*.pyc"]
        return runtime_env

    def _connect(self) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        import ray

        from . import jobqueue

        max_running = int(self.settings["max_running"])
        common = dict(namespace=jobqueue.namespace(), runtime_env=self._runtime_env(), log_to_driver=False,
                      logging_level=logging.WARNING, configure_logging=True)
        if self.address:
            try:
                ray.init(address=self.address, **common)
            except Exception as err:
                raise _Unavailable(f"Cannot join the Ray cluster at RAY_ADDRESS={self.address}: "
                                   f"{type(err).__name__}: {err}".strip()) from None
        else:
            # "local": a new instance of our own, never one that `ray start` left on this machine.
            ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False,
                     resources={jobqueue.SLOT_RESOURCE: max_running},
                     object_store_memory=256 * 1024**2, **common)
        self.queue = jobqueue.get_or_create_queue(max_running, local=not self.address)
        ping = ray.get(self.queue.ping.remote(), timeout=60)
        self.info = {"address": self.address or "local", "ray": ray.__version__,
                     "python": "%d.%d" % sys.version_info[:2], "resources": ray.cluster_resources(),
                     "max_running": ping["max_running"]}
        self.message = "Ray is starting: checking that a worker can run a job…"
        problem = self._check(ray, jobqueue)
        if problem:
            raise _Unavailable(problem)
        if not ping["warm"]:
            self.queue.warm.remote(ping["max_running"], self._job_options(jobqueue), int(self.settings["nice"]))
        self.state, self.message = "ready", ""
        _log(f"ready: Ray {ray.__version__} at {self.info['address']}, {self.info['resources'].get('CPU', 0):g} CPUs")

    def _cpus(self) -> int:
        from .jobs import cpus_per_job

        return cpus_per_job(int(self.settings.get("cpus", 0)), int(self.settings["max_running"]),
                            local=not self.address)

    def _job_options(self, jobqueue) -> dict:
        options = {"num_cpus": self._cpus()}
        if not self.address:
            options["resources"] = {jobqueue.SLOT_RESOURCE: 1}
        return options

    def _check(self, ray, jobqueue) -> str:
        """What stops this cluster from running a job, in words; empty when nothing does."""
        resources = self.info["resources"]
        cpus = self._cpus()
        have = resources.get("CPU", 0)
        if have < cpus:
            return (f"The Ray cluster at {self.info['address']} has {'no CPU' if not have else f'only {have:g} CPUs'} "
                    f"for jobs (each job asks for {cpus}: CVCORE_JOB_CPUS). "
                    "Add a worker node with `ray start --address=...`.")
        memory_mb = float(self.settings["memory_mb"])
        largest = max((n.get("Resources", {}).get("memory", 0) for n in ray.nodes() if n.get("Alive")), default=0)
        if largest and largest < memory_mb * 1024**2:
            return (f"No node of the Ray cluster has {memory_mb:.0f} MiB of memory for a job (CVCORE_JOB_MEMORY_MB); "
                    f"the largest has {largest / 1024**2:.0f} MiB. Lower the cap or add a bigger node.")
        from .workspace import store_root

        root = store_root()
        root.mkdir(parents=True, exist_ok=True)
        marker = secrets.token_hex(8)
        (root / ".probe").write_text(marker)
        seen = ray.get(self.queue.probe.remote(str(root), marker, self._job_options(jobqueue), 120.0), timeout=150)
        if "error" in seen:
            return f"A test job could not run on the Ray cluster at {self.info['address']}: {seen['error']}"
        mine = "%d.%d" % sys.version_info[:2]
        if seen["python"] != mine or seen["ray"] != ray.__version__:
            return (f"The Ray workers run Python {seen['python']} with Ray {seen['ray']}; this server runs Python "
                    f"{mine} with Ray {ray.__version__}. Install the same versions on every node.")
        if not seen["store_readable"]:
            return (f"A Ray worker cannot read the workspace store at {root}: mount it at the same path on every "
                    "node (see the README, 'Running on a Ray cluster').")
        return ""

    # -- watching
    def supervise(self) -> None:
        lost = 0
        while True:
            time.sleep(PING_EVERY_S)
            if os.getppid() != self.parent:
                _log("the page server has gone: ending")
                os._exit(0)
            if self.state != "ready":
                continue
            import ray

            try:
                ray.get(self.queue.ping.remote(), timeout=5)
                lost = 0
            except Exception as err:
                lost += 1
                _log(f"the queue did not answer ({type(err).__name__}: {err})")
                if lost >= PINGS_LOST:
                    self.state, self.message = "failed", "Ray was lost; the job service is restarting."
                    _log("Ray was lost: ending, the page server starts a new job service")
                    os._exit(3)

    # -- requests
    def handle(self, method: str, kw: dict):
        if method == "status":
            answer = {"state": self.state, "message": self.message, **self.info}
            if self.state == "ready":
                import ray

                try:
                    answer["queue"] = ray.get(self.queue.ping.remote(), timeout=5)
                except Exception:
                    pass
            return answer
        if self.state != "ready":
            raise _Unavailable(self.message)
        import ray

        q = self.queue
        if method == "submit":
            answer = ray.get(q.submit.remote(kw["spec"]), timeout=15)
            if "busy" in answer:
                raise _Busy(answer["busy"], int(answer.get("count", 1)))
            return answer["job"]
        if method == "get":
            return ray.get(q.get.remote(kw["job_id"]), timeout=10)
        if method == "active":
            return ray.get(q.active.remote(kw["owner"]), timeout=10)
        if method == "list":
            return ray.get(q.list.remote(kw.get("owner")), timeout=10)
        if method == "stop":
            return ray.get(q.stop.remote(kw["job_id"]), timeout=10)
        raise ValueError(f"unknown request {method!r}")

    def serve(self, conn) -> None:
        with conn:
            while True:
                try:
                    method, kw = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    answer = ("ok", self.handle(method, kw))
                except _Busy as busy:
                    answer = ("err", "busy", busy.message(), busy.job)
                except _Unavailable as err:
                    answer = ("err", "unavailable", str(err), None)
                except Exception as err:  # Ray timed out or went away mid-request
                    answer = ("err", "unavailable", f"The job service could not reach Ray ({type(err).__name__}); "
                                                    "try again in a few seconds.", None)
                try:
                    conn.send(answer)
                except OSError:
                    return


def _accept(listener, gate) -> None:
    while True:
        try:
            conn = listener.accept()
        except Exception:  # a caller without the key, or a broken handshake
            continue
        threading.Thread(target=gate.serve, args=(conn,), daemon=True).start()


def main() -> None:
    key = bytes.fromhex(os.environ.pop("CVCORE_JOBGATE_KEY"))
    # This process leads a session of its own, so Linux's autogroup scheduler weighs it (and the local Ray
    # and workers it starts) against the page server as a group: the workers' nice value alone would count
    # only inside it. The group is niced too, so that Ray's head yields the CPU to the pages; jobs go lower
    # still (jobqueue._lower_priority).
    settings = json.loads(os.environ.pop("CVCORE_JOBGATE_SETTINGS"))
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(min(19, int(settings["nice"]))))
    except OSError:
        pass  # no autogroup (another OS, or a kernel without it): the per-process nice value is what counts
    listener = Listener(("127.0.0.1", 0), authkey=key)
    gate = Gate(settings)
    threading.Thread(target=_accept, args=(listener, gate), name="accept", daemon=True).start()
    print(f"PORT {listener.address[1]}", flush=True)
    # Ray's own processes of a local instance end when the *thread* that started them ends (Linux's
    # parent-death signal is per thread): so Ray starts here, in the main thread, which lives on.
    gate.connect()
    gate.supervise()


if __name__ == "__main__":
    main()

"""``python -m classserver [--config class.toml]``: start a class server and keep it until Ctrl-C (or SIGTERM).

Stopping it stops everything it started; it says so, and names anything it had to kill.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from cvcore.errors import CvcoreError

from .config import ClassConfig
from .supervisor import ClassServer, ROOT


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classserver", description=__doc__)
    parser.add_argument("--config", default=str(ROOT / "class.toml"),
                        help="the class server's settings (default: class.toml next to app.py; optional)")
    parser.add_argument("--port", type=int, help="the port students open (overrides class.toml)")
    parser.add_argument("--page-servers", type=int, help="how many Streamlit processes (overrides class.toml)")
    args = parser.parse_args(argv)
    try:
        config = ClassConfig.load(args.config)
        overrides = {k: v for k, v in (("port", args.port), ("page_servers", args.page_servers)) if v is not None}
        if overrides:
            config = ClassConfig(**{**config.__dict__, **overrides})
        server = ClassServer(config)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: stop.set())
        print(f"Starting {config.resolved_page_servers()} page servers, a Ray head and HAProxy "
              f"(logs: {server.logs}) ...", flush=True)
        server.start()
    except CvcoreError as err:
        print(f"The class server did not start: {err}", file=sys.stderr)
        return 2
    print(f"ConvNet Explorer's class server is up: {server.url}  (page servers: "
          f"{', '.join(ps.name for ps in server.page_servers)}; jobs on Ray at {server.ray_address}). "
          f"Ctrl-C stops it.\nOperators: sign in if sign-in is on, or open {server.url}/operator and type the "
          f"token in {server.operator_token_file}.", flush=True)
    reported = set()  # page servers whose end was said
    while not stop.wait(1.0):
        if server.ray_lost():
            print(f"The Ray head ended (exit code {server.ray_proc.returncode}); starting it again. Running jobs "
                  f"are interrupted; waiting ones are submitted again once it is back.", flush=True)
            try:
                server.restart_ray()
                print(f"The Ray head is back at {server.ray_address}.", flush=True)
            except CvcoreError as err:
                print(f"The Ray head did not come back: {err} Trying again in a few seconds.", flush=True)
                stop.wait(5.0)
        for ps in server.page_servers:
            if ps.proc.poll() is not None and ps.name not in reported:
                reported.add(ps.name)
                print(f"Page server {ps.name} ended (exit code {ps.proc.returncode}); the proxy sends its users "
                      f"to the others. Its log: {server.logs / (ps.name + '.log')}", flush=True)
    print("Stopping ...", flush=True)
    killed = server.stop()
    print("Stopped: nothing left running." if not killed else
          f"Stopped; {len(killed)} leftover process(es) had to be killed: {killed}.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

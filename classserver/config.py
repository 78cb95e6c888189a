"""The class server's one configuration file: ``class.toml`` (``class.example.toml`` documents it).

Every setting has a default, so the file is optional. ``scripts/serve.sh`` reads it, and passes the job
limits to every page server as the ``CVCORE_*`` variables that :class:`cvcore.jobs.JobSettings` reads,
so one file decides them for the whole class server.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from cvcore.errors import CvcoreError
from cvcore.jobs import cpus_per_job

__all__ = ["ClassConfig", "ClassConfigError", "default_page_servers"]


class ClassConfigError(CvcoreError):
    """``class.toml`` has a setting that is unknown, or a value out of its range; the message names both."""


def default_page_servers(cpus: int | None = None) -> int:
    """One page server per two cores, and at least two.

    Example:
        >>> default_page_servers(2), default_page_servers(8)
        (2, 4)
    """
    cpus = cpus or os.cpu_count() or 2
    return max(2, cpus // 2)


# section -> key -> (type, minimum, default); None as a default: decided at start
_SCHEMA = {
    "server": {"host": (str, None, "0.0.0.0"), "port": (int, 1, 8501), "page_servers": (int, 0, 0),
               "tls_pem": (str, None, "")},
    "class": {"max_sessions": (int, 1, 120), "session_idle_minutes": (float, 1, 60.0)},
    "jobs": {"max_running": (int, 1, 2), "per_user": (int, 1, 1), "wall_minutes": (float, 1, 120.0),
             "memory_mb": (int, 64, 4096), "cpus": (int, 0, 0)},
    "operators": {"users": (list, None, []), "token_file": (str, None, "")},
    "ray": {"cpus": (int, 0, 0), "object_store_mb": (int, 0, 0)},
}


_FIELD = {("operators", "users"): "operators", ("ray", "cpus"): "ray_cpus", ("jobs", "cpus"): "job_cpus",
          ("ray", "object_store_mb"): "ray_object_store_mb"}  # where a key's name differs from the field's


@dataclass(frozen=True)
class ClassConfig:
    """What the operator set in ``class.toml`` (defaults elsewhere).

    Attributes:
        host, port: where the proxy listens (the address students open).
        page_servers: how many Streamlit processes; 0 means :func:`default_page_servers`.
        tls_pem: a PEM file (certificate and key) for HTTPS at the proxy; empty: plain HTTP.
        max_sessions: browser sessions across the whole class server; one more sees a "full" page.
        session_idle_minutes: a session idle this long is closed (its work stays in its workspace).
        max_running: jobs running at once across the class server.
        per_user: jobs one user (workspace) may have queued or running at once; one of them runs at a time.
        wall_minutes: each job's wall-clock limit.
        memory_mb: each job's memory cap.
        job_cpus: the CPUs each job asks for, and its TensorFlow's threads; 0: the Ray head's CPUs shared
            among ``max_running`` jobs, at least one.
        operators: signed-in users (e-mail or subject) who see the Operator page.
        token_file: where the operator token is kept when sign-in is off (default: in the state folder).
        ray_cpus: CPUs the Ray head offers to jobs; 0: all of the machine's.
        ray_object_store_mb: the size of Ray's object store; 0: Ray's default (30% of memory).

    Example:
        >>> ClassConfig.from_dict({"jobs": {"max_running": 3}}).max_running
        3
        >>> ClassConfig.from_dict({"jobs": {"max_runing": 3}})
        Traceback (most recent call last):
        ...
        classserver.config.ClassConfigError: class.toml: unknown setting [jobs] max_runing; the settings of [jobs] are max_running, per_user, wall_minutes, memory_mb, cpus.
    """

    host: str = "0.0.0.0"
    port: int = 8501
    page_servers: int = 0
    tls_pem: str = ""
    max_sessions: int = 120
    session_idle_minutes: float = 60.0
    max_running: int = 2
    per_user: int = 1
    wall_minutes: float = 120.0
    memory_mb: int = 4096
    job_cpus: int = 0
    operators: tuple = field(default_factory=tuple)
    token_file: str = ""
    ray_cpus: int = 0
    ray_object_store_mb: int = 0

    @classmethod
    def load(cls, path: str | os.PathLike | None) -> "ClassConfig":
        """Read ``path``; a missing file gives the defaults.

        Raises:
            ClassConfigError: the file is not TOML, or a setting is unknown or out of range.
        """
        if path is None or not Path(path).is_file():
            return cls()
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ClassConfigError(f"{path} is not valid TOML: {err}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> "ClassConfig":
        """Validate a parsed ``class.toml``.

        Raises:
            ClassConfigError: naming the setting and the value received.
        """
        values = {}
        for section, entries in data.items():
            schema = _SCHEMA.get(section)
            if schema is None or not isinstance(entries, dict):
                raise ClassConfigError(f"class.toml: unknown section [{section}]; the sections are "
                                       f"{', '.join(f'[{s}]' for s in _SCHEMA)}.")
            for key, value in entries.items():
                if key not in schema:
                    raise ClassConfigError(f"class.toml: unknown setting [{section}] {key}; the settings of "
                                           f"[{section}] are {', '.join(schema)}.")
                kind, minimum, _ = schema[key]
                ok = isinstance(value, kind) and not isinstance(value, bool)
                if kind is float and isinstance(value, int) and not isinstance(value, bool):
                    value, ok = float(value), True
                if kind is list:
                    ok = isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
                if not ok or (minimum is not None and value < minimum):
                    want = {str: "a string", int: "a whole number", float: "a number", list: "a list of names"}[kind]
                    bound = f" of at least {minimum}" if minimum is not None else ""
                    raise ClassConfigError(f"class.toml: [{section}] {key} must be {want}{bound}; received {value!r}.")
                values[_FIELD.get((section, key), key)] = value
        if "operators" in values:
            values["operators"] = tuple(v.strip() for v in values["operators"])
        if values.get("tls_pem") and not Path(values["tls_pem"]).is_file():
            raise ClassConfigError(f"class.toml: [server] tls_pem must be a PEM file with the certificate and its "
                                   f"key; there is no file {values['tls_pem']!r}.")
        return cls(**values)

    def resolved_page_servers(self) -> int:
        """The number of page servers to start."""
        return self.page_servers or default_page_servers()

    def environment(self) -> dict:
        """The ``CVCORE_*`` variables that give every page server (and the queue) these settings."""
        return {"CVCORE_MAX_JOBS": str(self.max_running), "CVCORE_JOBS_PER_USER": str(self.per_user),
                "CVCORE_JOB_WALL_S": str(self.wall_minutes * 60), "CVCORE_JOB_MEMORY_MB": str(self.memory_mb),
                "CVCORE_JOB_CPUS": str(cpus_per_job(self.job_cpus, self.max_running, local=True,
                                                    machine_cpus=self.ray_cpus or None)),
                "CVCORE_MAX_SESSIONS": str(self.max_sessions),
                "CVCORE_SESSION_IDLE_S": str(self.session_idle_minutes * 60),
                "CVCORE_OPERATORS": ",".join(self.operators)}

    def operator_token_path(self, state: Path) -> Path:
        """Where the operator token is kept (``token_file``, else ``state/class-server/operator-token``)."""
        return Path(self.token_file) if self.token_file else Path(state) / "class-server" / "operator-token"

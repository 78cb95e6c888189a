"""Where computation runs: GPU detection and memory growth.

TensorFlow by default grabs nearly all of a GPU's memory for the first
process that touches it, which would let one browser session starve every
other on a shared teaching server. :func:`configure` turns memory growth on
for every GPU before TensorFlow initialises them, so each session takes only
what it uses. On a machine without a GPU everything runs on the CPU.

TensorFlow is imported lazily: pages that only need numpy (the Filters page)
never pay for it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass

__all__ = ["DeviceInfo", "configure", "configure_async", "peek", "describe", "gpu_memory", "keras", "tensorflow"]

_lock = threading.Lock()
_info: "DeviceInfo | None" = None
_warming: "threading.Thread | None" = None


@dataclass(frozen=True)
class DeviceInfo:
    """What TensorFlow will run on.

    Attributes:
        kind: ``"GPU"`` or ``"CPU"``.
        gpus: the GPUs' names (empty on a CPU-only machine).
        memory_growth: whether memory growth is on for every GPU.
        tensorflow: TensorFlow's version.
        keras: Keras' version.
        cpu_count: logical CPU cores.
        note: a sentence for people (why growth could not be set, say).
    """

    kind: str
    gpus: tuple[str, ...]
    memory_growth: bool
    tensorflow: str
    keras: str
    cpu_count: int
    note: str = ""

    @property
    def label(self) -> str:
        """One line for the sidebar, e.g. ``GPU: NVIDIA H100 (memory growth on)``."""
        if self.kind == "GPU":
            growth = "memory growth on" if self.memory_growth else "memory growth OFF"
            return f"GPU: {', '.join(self.gpus)} ({growth})"
        return f"CPU: {self.cpu_count} cores (no GPU found)"


def configure() -> DeviceInfo:
    """Detect devices and turn on GPU memory growth, once per process.

    Safe to call from every page and thread: the work runs once and later
    calls return the same :class:`DeviceInfo`.

    Returns:
        The :class:`DeviceInfo` for this process.

    Example:
        >>> info = configure()
        >>> info.kind in ("GPU", "CPU")
        True
    """
    global _info
    with _lock:
        if _info is not None:
            return _info
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep the server log readable
        import tensorflow as tf
        import keras

        gpus = tf.config.list_physical_devices("GPU")
        growth, note = True, ""
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError as err:  # GPUs already initialised by someone else
                growth = bool(tf.config.experimental.get_memory_growth(gpu))
                note = f"memory growth could not be changed: {err}"
        names = []
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu)
            names.append(details.get("device_name", gpu.name))
        _info = DeviceInfo(
            kind="GPU" if gpus else "CPU",
            gpus=tuple(names),
            memory_growth=bool(gpus) and growth,
            tensorflow=tf.__version__,
            keras=keras.__version__,
            cpu_count=os.cpu_count() or 1,
            note=note,
        )
        return _info


def peek() -> "DeviceInfo | None":
    """The :class:`DeviceInfo` if :func:`configure` has finished, else None; never blocks.

    Example:
        >>> peek() is None or peek().kind in ("GPU", "CPU")
        True
    """
    return _info


def configure_async() -> threading.Thread:
    """Start :func:`configure` in a background thread (once) and return that thread.

    TensorFlow's first import takes seconds: a page can start it at once,
    draw without waiting, and show the device when :func:`peek` has it.

    Example:
        >>> configure_async().join(); peek() is not None
        True
    """
    global _warming
    with _lock:
        if _warming is None:
            _warming = threading.Thread(target=configure, name="cvcore-device", daemon=True)
            _warming.start()
        return _warming


def describe() -> str:
    """A short description of the device for people, e.g. for a sidebar.

    Example:
        >>> describe().startswith(("GPU", "CPU"))
        True
    """
    info = configure()
    return f"{info.label} · TensorFlow {info.tensorflow} · Keras {info.keras}"


def keras():
    """The ``keras`` module, imported after :func:`configure`: the one way cvcore's modules get Keras.

    Example:
        >>> keras().__name__
        'keras'
    """
    configure()
    import keras as _keras

    return _keras


def tensorflow():
    """The ``tensorflow`` module, imported after :func:`configure`."""
    configure()
    import tensorflow as _tf

    return _tf


def gpu_memory() -> list[dict]:
    """Memory in use on each NVIDIA GPU of this machine, by every process (``nvidia-smi``); [] without one.

    Returns:
        One dict per device: ``device``, ``name``, ``used_mb``, ``total_mb``.

    Example:
        >>> isinstance(gpu_memory(), list)
        True
    """
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=index,name,memory.used,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4 and parts[0].isdigit():
            rows.append({"device": f"GPU:{parts[0]}", "name": parts[1], "used_mb": int(float(parts[2])),
                         "total_mb": int(float(parts[3]))})
    return rows

"""The Visualize page's long work as jobs (:mod:`cvcore.jobs`): gradient ascent, Score-CAM and SmoothGrad.

A job runs in a Ray worker, another process (maybe another machine sharing the
workspace store): it sees no object of the page, only JSON and files. So the
page names everything by reference:

* the model (:func:`open_model`): a run of the workspace ``{"run": id}``; an
  ImageNet application ``{"application": name, "weights": "imagenet" | "random"}``
  or, with a weights file uploaded into the workspace,
  ``{"application": name, "weights_file": path}``; an uploaded ``.keras`` file
  kept in the workspace ``{"file": path}``. Any of them may add
  ``"preprocessing"`` (a key of :data:`cvcore.model_inputs.PREPROCESSING`),
  as the page sets it for an uploaded model;
* the image (Score-CAM, SmoothGrad): the path of a ``.npy`` file in the
  workspace (read without pickle).

Paths must lie inside the workspace. :func:`picture_job` computes the picture
with :mod:`cvcore.visualize` (reporting ``{"done", "total"}`` and stopping when
asked) and keeps it with :meth:`cvcore.workspace.Workspace.save_result` under
the page's key (``value``: the picture, ``stopped``: whether Stop cut it short);
the page reads it from there. What the job returns is small JSON.

Workers are reused: the last :data:`MAX_MODELS` models loaded are kept per
process, keyed by their reference and their file's modification time, so a
second job on the same model does not load it again (and reuses what
cvcore.visualize caches per model: traced functions, Score-CAM's batches).
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .. import checks
from ..errors import CvcoreError

__all__ = ["TECHNIQUES", "MAX_MODELS", "picture_job", "open_model", "clear_models"]

#: What :func:`picture_job` computes, and the parameters each takes (``params``).
TECHNIQUES = {
    "filters": ("layer", "indices", "steps", "step_size", "size"),
    "class": ("class_index", "steps", "step_size", "size"),
    "scorecam": ("class_index", "layer"),
    "smoothgrad": ("class_index", "samples"),
}
_NEEDS_IMAGE = ("scorecam", "smoothgrad")
#: Models kept loaded per worker process.
MAX_MODELS = 2

_models: "OrderedDict[tuple, object]" = OrderedDict()
_models_lock = threading.Lock()


def clear_models() -> None:
    """Forget the models this process keeps loaded."""
    with _models_lock:
        _models.clear()


def _inside(ws, path, what: str) -> Path:
    """``path`` (text) as a file inside the workspace ``ws``, or a CvcoreError that says why not."""
    if not isinstance(path, str) or not path:
        raise CvcoreError(f"The {what} must be named by its path in the workspace; received {path!r}.")
    resolved = Path(path).resolve()
    if ws.path.resolve() not in resolved.parents:
        raise CvcoreError(f"The {what} must be a file inside the workspace; {path!r} is not.")
    if not resolved.is_file():
        raise CvcoreError(f"The {what} is no longer in your workspace ({resolved.name}): upload or pick it again.")
    return resolved


def _stamp(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


def _source(ws, ref):
    """``(cache key, loader)`` of a model reference (see the module's doc)."""
    from .. import applications, saving

    if not isinstance(ref, dict):
        raise CvcoreError(f"A model reference must be a dict; received {type(ref).__name__}.")
    named = [k for k in ("run", "application", "file") if k in ref]
    if len(named) != 1:
        raise CvcoreError("A model reference names one of 'run', 'application' or 'file'; "
                          f"received {json.dumps(ref, sort_keys=True, default=str)}.")
    if "run" in ref:
        run_id = ref["run"]
        path = ws.model_path(run_id)  # checks the id
        if not path.is_file():
            raise CvcoreError(f"Run {run_id} has no saved model in your workspace (was it deleted?).")
        return ("run", str(ws.path), run_id, _stamp(path)), lambda: ws.load_model(run_id)
    if "file" in ref:
        path = _inside(ws, ref["file"], "uploaded model")
        return ("file", str(path), _stamp(path)), lambda: saving.load_model_bytes(path.read_bytes())
    name = ref["application"]
    if "weights_file" in ref:
        path = _inside(ws, ref["weights_file"], "uploaded weights file")
        return ("application", name, str(path), _stamp(path)), lambda: applications.load_application(name, weights=path)
    weights = ref.get("weights", "imagenet")
    checks.choice(weights, "weights", ("imagenet", "random"))
    return (("application", name, weights),
            lambda: applications.load_application(name, weights=None if weights == "random" else "imagenet"))


def open_model(workspace, ref):
    """The Keras model a reference names, loaded once per process (see the module's doc).

    Args:
        workspace: the :class:`cvcore.workspace.Workspace` the reference's files are in.
        ref: ``{"run": id}``, ``{"application": name, "weights": "imagenet" | "random"}``,
            ``{"application": name, "weights_file": path}`` or ``{"file": path}``, each with an optional
            ``"preprocessing"``.

    Returns:
        The model, tagged with its preprocessing when the reference gives one. The same object for the
        same reference while its file is unchanged and it is among the last :data:`MAX_MODELS` used.

    Raises:
        CvcoreError: for a malformed reference, a path outside the workspace, a file that is gone, or a
            model that cannot be loaded (a :class:`cvcore.workspace.StoreError`,
            :class:`cvcore.errors.InvalidModelError` or :class:`cvcore.errors.WeightsUnavailableError`).

    Example:
        >>> import tempfile
        >>> from cvcore.models import PRESETS, build_model
        >>> from cvcore.workspace import Store, new_token
        >>> ws = Store(tempfile.mkdtemp()).anonymous(new_token())
        >>> rec = ws.new_run("upload", name="Run 1", title="untrained")
        >>> ws.save_model(rec.id, build_model(PRESETS["Basic CNN (6 and 12 filters)"]))
        >>> open_model(ws, {"run": rec.id}) is open_model(ws, {"run": rec.id})
        True
    """
    from .. import model_inputs

    key, load = _source(workspace, ref)
    preprocessing = ref.get("preprocessing")
    if preprocessing is not None:
        checks.choice(preprocessing, "preprocessing", tuple(model_inputs.PREPROCESSING))
    key = key + (preprocessing,)
    with _models_lock:
        model = _models.get(key)
        if model is not None:
            _models.move_to_end(key)
            return model
    model = load()
    if preprocessing is not None:
        model_inputs.set_preprocessing(model, preprocessing)
    with _models_lock:
        _models[key] = model
        _models.move_to_end(key)
        while len(_models) > MAX_MODELS:
            _models.popitem(last=False)
    return model


def _image(ws, path) -> np.ndarray:
    found = _inside(ws, path, "image")
    try:
        image = np.load(found, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise CvcoreError(f"The image file {found.name} cannot be read as a .npy array: {err}") from None
    if image.dtype == object:
        raise CvcoreError("The image file holds Python objects; only numbers are read.")
    return image


def _params(technique, params) -> dict:
    if not isinstance(params, dict):
        raise CvcoreError(f"`params` must be a dict; received {type(params).__name__}.")
    unknown = sorted(set(params) - set(TECHNIQUES[technique]))
    if unknown:
        raise CvcoreError(f"{technique!r} takes no parameter {', '.join(map(repr, unknown))}; "
                          f"it takes {', '.join(TECHNIQUES[technique])}.")
    return params


def picture_job(ctx, *, workspace: dict, model: dict, technique: str, params: dict, key: str,
                image: str | None = None) -> dict:
    """The Visualize page's job: one picture by gradient ascent, Score-CAM or SmoothGrad, kept in the workspace.

    Args:
        ctx: the job's context (:class:`cvcore.jobs.JobContext`): progress is reported as
            ``{"done": d, "total": t}`` (steps, masked images or noisy copies); Stop is heard at the next
            report.
        workspace: :meth:`cvcore.workspace.Workspace.ref` of the user's workspace.
        model: a model reference (:func:`open_model`).
        technique: one of :data:`TECHNIQUES`:

            * ``"filters"``: :func:`cvcore.visualize.maximize_filters` (``layer``, ``indices``, ``steps``,
              ``step_size``, ``size``);
            * ``"class"``: :func:`cvcore.visualize.maximize_class` (``class_index``, ``steps``,
              ``step_size``, ``size``);
            * ``"scorecam"``: :func:`cvcore.visualize.class_activation_map` with ``method="scorecam"``
              (``class_index``, ``layer``);
            * ``"smoothgrad"``: :func:`cvcore.visualize.saliency.smoothgrad` (``class_index``, ``samples``).
        params: the technique's keyword arguments (those not given take their defaults).
        key: what the picture is kept under (:meth:`cvcore.workspace.Workspace.save_result`; the page
            passes ``repr`` of its own key).
        image: Score-CAM's and SmoothGrad's image: the path of a ``.npy`` file in the workspace.

    Returns:
        ``{"saved": True, "stopped": bool, "done": d, "total": t}`` when a picture was kept (``stopped``:
        Stop cut it short, and the picture is as it was then); ``{"saved": False, "done": d, "total": t}``
        when Stop came before there was anything to keep.

    Raises:
        CvcoreError: for a malformed argument, a model or image that cannot be had, or what the
            technique raises for its arguments (a layer it cannot use, a class out of range...).

    Example:
        >>> import tempfile
        >>> from cvcore.jobs import run_inline
        >>> from cvcore.models import PRESETS, build_model
        >>> from cvcore.workspace import Store, new_token
        >>> ws = Store(tempfile.mkdtemp()).anonymous(new_token())
        >>> rec = ws.new_run("upload", name="Run 1", title="untrained")
        >>> ws.save_model(rec.id, build_model(PRESETS["Basic CNN (6 and 12 filters)"]))
        >>> run_inline("cvcore.visualize.jobs:picture_job", {
        ...     "workspace": ws.ref(), "model": {"run": rec.id}, "technique": "filters",
        ...     "params": {"layer": "conv2d_1", "indices": [0, 1], "steps": 5}, "key": "two filters"})
        {'saved': True, 'stopped': False, 'done': 5, 'total': 5}
        >>> ws.load_result("two filters")["value"].shape
        (2, 28, 28, 1)
    """
    from ..workspace import Workspace

    checks.choice(technique, "technique", tuple(TECHNIQUES))
    params = _params(technique, params)
    if not isinstance(key, str) or not key:
        raise CvcoreError(f"`key` must be a non-empty string; received {key!r}.")
    ws = Workspace.from_ref(workspace)
    if technique in _NEEDS_IMAGE and image is None:
        raise CvcoreError(f"{technique!r} needs an image: the path of a .npy file in the workspace.")
    picture_input = _image(ws, image) if technique in _NEEDS_IMAGE else None
    net = open_model(ws, model)

    seen = {"done": 0, "total": None}

    def on_progress(done, total):
        seen.update(done=int(done), total=int(total))
        ctx.report({"done": int(done), "total": int(total)})

    if technique == "filters":
        from .ascent import maximize_filters

        p = dict(params)
        value = maximize_filters(net, p.pop("layer", None), p.pop("indices", None), on_progress=on_progress,
                                 should_stop=ctx.should_stop, **p)
    elif technique == "class":
        from .ascent import maximize_class

        p = dict(params)
        value = maximize_class(net, p.pop("class_index", None), on_progress=on_progress,
                               should_stop=ctx.should_stop, **p)
    elif technique == "scorecam":
        from .cam import class_activation_map

        value = class_activation_map(net, picture_input, params.get("class_index"), method="scorecam",
                                     layer_name=params.get("layer"), on_progress=on_progress,
                                     should_stop=ctx.should_stop)
    else:
        from . import smoothgrad  # through the package: its `saliency` stays the function

        value, _ = smoothgrad(net, picture_input, params.get("class_index"), params.get("samples", 20),
                              on_progress=on_progress, should_stop=ctx.should_stop)
    done, total = seen["done"], seen["total"]
    if value is None or np.asarray(value).size == 0:
        return {"saved": False, "done": done, "total": total}
    stopped = total is None or done < total
    ws.save_result(key, value=np.asarray(value), stopped=stopped)
    return {"saved": True, "stopped": bool(stopped), "done": done, "total": total}

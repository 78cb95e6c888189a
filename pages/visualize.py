"""What ConvNets learn: activations, filters and classes by gradient ascent, saliency and class activation maps.

Reads top-down: the model (trained on the Train page, a famous ImageNet model,
or an uploaded .keras file), the image and what the model predicts for it,
then four views, each computed by cvcore.visualize. Gradient ascent, Score-CAM
and SmoothGrad are long: they run as jobs on Ray, outside this server
(cvcore.visualize.jobs), with a progress bar and a Stop button. A job sees no
object of this page, only files: the model is named by reference (a run of the
workspace, an ImageNet model, or an upload kept in the workspace) and the image
is saved into the workspace for it; the job keeps its picture in the workspace,
where this page (a reload, another tab) reads it, so that a second look is instant.
"""
import contextlib
import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from cvcore import applications, jobs, saving
from cvcore import visualize as vis
from cvcore.errors import CvcoreError
from cvcore.workspace import QuotaExceededError
from cvcore.images import enlarge, fit_within
from cvcore.visualize import ascent
from cvcore.visualize.cam import SCORECAM_MAX_CHANNELS
from cvcore import model_inputs as vis_inputs
from ui import plots
from ui.common import dataset, show_error, wide_layout
from ui.image_source import pick_image
from ui.runs import quota_error, run_arrays, run_model
from ui.jobs import count_progress, job_view, page_job
from ui.workspace import current_workspace, job_owner

JOB_KEY = "vis_job"  # {"id", "key", "label", "unit", "on_stop", "folder"} of the running visualization job
RESULTS_KEY = "vis_results"  # key -> {"value", "stopped"}: pictures read from the workspace, this session's
JOB_TARGET = "cvcore.visualize.jobs:picture_job"
MAX_RESULTS = 24
MAX_CHANNELS = 128
METHOD_TITLES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM"}

wide_layout()
manager = jobs.default_manager()
st.title("What ConvNets learn")
st.caption(
    "Open the black box: what each layer's maps light up on, what image makes a filter or a class respond most "
    "(gradient ascent in input space), and where in an image the evidence for a class lies (saliency maps and "
    "class activation maps)."
)


# ============================================================================ 1. model
st.subheader("1 · Model", divider="gray")
ws = current_workspace()
# The Train and Transfer pages' runs that saved a model, from the workspace (a reload keeps them).
runs = [{"id": r.id, "label": r.name, "title": r.title, "dataset": r.data.get("dataset") or r.config.get("dataset"),
         "record": r} for r in ws.runs(("train", "upload", "transfer")) if r.has_model]
source = st.segmented_control(
    "Model", ["Trained here", "ImageNet model", "Upload .keras"], key="vis_model_source",
    default="Trained here" if runs else "ImageNet model",
    help="A model you trained on the Train or Transfer page (kept in your workspace), a famous network trained on ImageNet "
         "(VGG16, ResNet50, InceptionV3, MobileNetV2), or a .keras file.",
) or ("Trained here" if runs else "ImageNet model")


@st.cache_resource(show_spinner="Building the model…", max_entries=8)
def application(name: str, weights: str):
    """(model, None) or (None, why): shared by every session; the weights are read-only."""
    try:
        return applications.load_application(name, weights=None if weights == "random" else weights), None
    except CvcoreError as err:
        return None, str(err)


def use_random_weights():
    st.session_state["vis_weights"] = "Random (structure only)"


def trained_model():
    if not runs:
        st.info("No model has been trained in your workspace yet: train one on the Train page (a minute on the "
                "digits), or pick an ImageNet model or upload a .keras file.", icon=":material/model_training:")
        st.page_link("pages/train.py", label="Train a ConvNet", icon=":material/model_training:")
        st.stop()
    by_id = {r["id"]: r for r in runs}
    run_id = st.selectbox("Run", list(by_id)[::-1], key="vis_run",
                          format_func=lambda i: f"{by_id[i]['label']}: {by_id[i]['title']}",
                          help="The runs of the Train and Transfer pages that saved a model.")
    run = by_id[run_id]
    model = run_model(ws, run["record"])
    if model is None:
        st.stop()  # run_model said why
    _, class_names, _ = run_test_data(run)
    # Server-wide caches below are keyed by the run's own random id: one user's model never answers for another's.
    return model, f"run:{run['id']}", list(class_names), run, {"run": run["id"]}


def run_test_data(run):
    """``((x_test, y_test), class_names, key)`` of a run: a Transfer run's validation images, or the
    test set of the Train run's data set."""
    rec = run["record"]
    if rec.kind == "transfer":  # judged on its validation images, kept with the run
        arrays = run_arrays(ws, rec, "validation")
        if arrays is None:
            st.stop()  # said on the page
        return (arrays["images"], arrays["labels"]), rec.extra.get("class_names") or [], rec.id
    (_, test, class_names), used, _ = dataset(run["dataset"])
    return test, class_names, used


def imagenet_model():
    c1, c2 = st.columns(2)
    name = c1.selectbox("Network", list(applications.APPLICATIONS), key="vis_app",
                        format_func=lambda n: applications.APPLICATIONS[n]["title"],
                        help="VGG16 first, as in the chapters; then deeper and lighter designs.")
    weights = c2.radio("Weights", ["ImageNet", "Random (structure only)", "Upload a weights file"], key="vis_weights",
                       horizontal=True, help="ImageNet weights come through Keras' cache (a download on a machine with "
                                             "internet) or a file; random weights show the structure only.")
    title = applications.APPLICATIONS[name]["title"]
    if weights == "Upload a weights file":
        up = st.file_uploader(f"{title}'s ImageNet weights (.h5, Keras' file)", type=["h5"], key="vis_weights_file",
                              help=f"Keras' file {applications.APPLICATIONS[name]['files'][0]}. At most 200 MB here; "
                                   "VGG16's (528 MB) must be put on the server by its operator.")
        if up is None:
            st.stop()
        model, path, sha = weights_from_upload(name, up)
        return (model, f"app:{name}:{sha}", applications.imagenet_class_names(), None,
                {"application": name, "weights_file": path})
    model, why = application(name, "imagenet" if weights == "ImageNet" else "random")
    if model is None:
        st.warning(why, icon=":material/cloud_off:")
        st.button(f"Explore {title} with random weights instead", key="vis_use_random", on_click=use_random_weights,
                  icon=":material/shuffle:", help="The same architecture: layers, shapes and activations are real; "
                                                  "predictions and pictures of filters mean nothing yet.")
        st.stop()
    if weights != "ImageNet":
        st.caption(":material/info: Random weights: the structure is real, the predictions and pictures are not.")
    kept = "imagenet" if weights == "ImageNet" else "random"
    return model, f"app:{name}:{kept}", applications.imagenet_class_names(), None, {"application": name, "weights": kept}


def keep_upload(cache_name: str, upload_id, up, filename: str, load):
    """An uploaded file kept in the workspace (the jobs, in other processes, read it there), loaded once per
    upload with ``load(path)``: the session's cache ``{"id", "path", "sha", "model", "error"}``. The previous
    upload's folder is removed (unless a job may be reading it); a file that does not load is not kept."""
    cache = st.session_state.setdefault(cache_name, {})
    if cache.get("id") == upload_id:
        return cache
    data = up.getvalue()
    try:
        ws.ensure_room(len(data))
        folder = ws.new_folder(cache_name.removeprefix("vis_"))
        path = Path(folder) / filename
        path.write_bytes(data)
    except QuotaExceededError as err:
        quota_error(ws, err, "vis")
        st.stop()
    except (CvcoreError, OSError) as err:
        show_error(CvcoreError(f"The upload could not be kept in your workspace: {err}"))
        st.stop()
    if cache.get("path") and st.session_state.get(JOB_KEY) is None:
        with contextlib.suppress(CvcoreError):
            ws.remove(Path(cache["path"]).parent)
    try:
        model, error = load(path), None
    except CvcoreError as err:
        model, error = None, str(err)
        with contextlib.suppress(CvcoreError):
            ws.remove(folder)
    cache.clear()
    cache.update(id=upload_id, path=str(path) if model is not None else None,
                 sha=hashlib.sha256(data).hexdigest()[:16], model=model, error=error)
    return cache


def weights_from_upload(name, up):
    """``(model, path of the weights file in the workspace, its hash)`` of an uploaded weights file."""
    cache = keep_upload("vis_uploaded_weights", (name, up.file_id), up, "weights.h5",
                        lambda path: applications.load_application(name, weights=path))
    if cache["model"] is None:
        show_error(CvcoreError(cache["error"]), "Upload Keras' own weights file for this network.")
        st.stop()
    return cache["model"], cache["path"], cache["sha"]


def uploaded_model():
    up = st.file_uploader("A Keras model (.keras)", type=["keras"], key="vis_model_file",
                          help="Loaded in Keras' safe mode: a file that would run code is refused. It is kept in "
                               "your workspace while you work on it, for the background jobs to read.")
    if up is None:
        st.info("Upload a .keras file (the Train page saves one), or pick another model.", icon=":material/upload:")
        st.stop()
    cache = keep_upload("vis_uploaded_model", up.file_id, up, "model.keras",
                        lambda path: saving.load_model_bytes(path.read_bytes()))
    if cache["model"] is None:
        show_error(CvcoreError(cache["error"]), "Upload another file.")
        st.stop()
    model = cache["model"]
    kinds = list(vis_inputs.PREPROCESSING)
    kind = st.selectbox("Its inputs", kinds, index=kinds.index(vis_inputs.preprocessing_of(model)),
                        format_func=vis_inputs.PREPROCESSING.get, key=f"vis_pre_{up.file_id}",
                        help="How pixels must be scaled for this model; guessed from its first layer and name.")
    vis_inputs.set_preprocessing(model, kind)
    n_out = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    names = applications.imagenet_class_names() if n_out == 1000 else [f"class {i}" for i in range(n_out or 0)]
    return model, f"upload:{cache['sha']}:{kind}", names, None, {"file": cache["path"], "preprocessing": kind}


model, model_key, class_names, run, model_ref = {"Trained here": trained_model, "ImageNet model": imagenet_model,
                                      "Upload .keras": uploaded_model}[source]()
try:
    h, w, c = vis_inputs.input_size(model)
    conv_names = vis_inputs.conv_layer_names(model)
except CvcoreError as err:
    show_error(err, "Pick another model.")
    st.stop()
m = st.columns(4)
m[0].metric("Input", f"{h} x {w} x {c}" if h else f"any x any x {c}")
m[1].metric("Layers", len(model.layers))
m[2].metric("Parameters", f"{model.count_params():,}")
m[3].metric("Classes", f"{len(class_names):,}")
if not conv_names:
    st.warning("This model has no convolutional layer: only predictions can be shown.", icon=":material/info:")


# ============================================================================ 2. image
st.subheader("2 · Image", divider="gray")


def test_image():
    (xt, yt), names, used = run_test_data(run)
    c1, c2 = st.columns(2)
    label = c1.selectbox("Class", range(len(names)), format_func=lambda i: names[i], key="vis_test_class",
                         help="A test image of the data set this model was trained on (a validation image of a "
                              "Transfer run).")
    members = np.flatnonzero(yt == label)
    if not len(members):
        c2.info(f"No test image of {names[label]!r}: pick another class, or another image.", icon=":material/info:")
        st.stop()
    i = int(c2.number_input(f"Test image of the class (0–{len(members) - 1})", 0, len(members) - 1, 0,
                            key=f"vis_test_index_{used}_{label}"))
    return xt[members[i]], f"test image: {names[label]} #{i}", label


truth = None
if run is not None and st.segmented_control("Image", ["Test image", "Another image"], default="Test image",
                                            key="vis_image_kind") != "Another image":
    image, caption, truth = test_image()
else:
    image, caption = pick_image("vis", default="Photo")
    image = fit_within(np.asarray(image), 512)  # the maps are drawn at most 512 px; models take less
image = np.ascontiguousarray(image)
digest = hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()[:16]


@st.cache_data(show_spinner=False, max_entries=64)
def predictions(_model, model_key: str, digest: str, _image, k: int, _names):
    return vis.top_predictions(_model, _image, k=k, class_names=_names)


try:
    top = predictions(model, model_key, digest, image, min(5, len(class_names)), class_names)
except CvcoreError as err:
    show_error(err, "Pick another image or model.")
    st.stop()
c1, c2 = st.columns([1, 2])
c1.plotly_chart(plots.image(image, caption, height=300), key="vis_image_fig")
c2.plotly_chart(plots.probability_bars([p for _, _, p in top], [n for _, n, _ in top], height=300,
                                       title="Top predictions" + (f" (true class: {class_names[truth]})"
                                                                  if truth is not None else "")),
                key="vis_top_fig")
predicted = top[0][0]


# ============================================================================ jobs: long work on Ray
class Results:
    """The pictures that the jobs kept in the workspace (a reload, a restart or another tab finds them there),
    by what decides them; those read this session are held in memory."""

    def __init__(self):
        self.memory = st.session_state.setdefault(RESULTS_KEY, {})

    def get(self, key):
        if key not in self.memory:
            saved = ws.load_result(repr(key))
            if saved is None or "value" not in saved:
                return None
            self.memory[key] = {"value": saved["value"], "stopped": bool(saved.get("stopped", False))}
            while len(self.memory) > MAX_RESULTS:
                self.memory.pop(next(iter(self.memory)))
        return self.memory[key]

    def reload(self, key):
        """What the workspace holds under ``key`` now (a job has just written it)."""
        self.memory.pop(key, None)
        return self.get(key)

    def __contains__(self, key):
        return self.get(key) is not None

    def __getitem__(self, key):
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found


def results() -> Results:
    return Results()


def submit(key, label, technique, params, *, model_ref, image=None, unit="steps",
           on_stop="Stops after the current step and keeps the picture so far.") -> None:
    """Queue :func:`cvcore.visualize.jobs.picture_job` for ``technique`` as this workspace's job; it keeps its
    picture in the workspace under ``repr(key)``. ``image`` (Score-CAM, SmoothGrad) is saved into the workspace
    for the job to read; ``unit`` names what the progress counts; ``on_stop`` is the Stop button's help."""
    folder = None
    config = {"workspace": ws.ref(), "model": model_ref, "technique": technique, "params": params, "key": repr(key)}
    try:
        if image is not None:
            folder = ws.new_folder("vis-image")
            np.save(folder / "image.npy", np.ascontiguousarray(image), allow_pickle=False)
            config["image"] = str(folder / "image.npy")
        job = manager.submit(job_owner(), JOB_TARGET, config, name=label, kind="visualize")
    except (CvcoreError, OSError) as err:  # one job per workspace: a training run or a folder run may be going
        if folder is not None:
            with contextlib.suppress(CvcoreError):
                ws.remove(folder)
        st.session_state["vis_submit_error"] = str(err)
        return
    st.session_state[JOB_KEY] = {"id": job.id, "key": key, "label": label, "unit": unit, "on_stop": on_stop,
                                 "folder": str(folder) if folder is not None else None}


followed, _, _ = page_job(manager, job_owner(), lambda job: job.kind == "visualize")
if followed is not None and JOB_KEY not in st.session_state:
    # A reload, or a second tab: follow the workspace's running picture (its key is the job's own: the
    # picture is read from the workspace when its view asks for it).
    st.session_state[JOB_KEY] = {"id": followed.id, "key": None, "label": followed.name, "unit": "steps",
                                 "on_stop": "Stops after the current step and keeps the picture so far."}
active = st.session_state.get(JOB_KEY)
job = manager.get(active["id"]) if active else None


def job_ended(current) -> None:
    """Read the picture the job kept in the workspace (or say how far it got, or why it failed)."""
    info = st.session_state[JOB_KEY]
    if info.get("folder"):  # the image saved for the job
        with contextlib.suppress(CvcoreError):
            ws.remove(info["folder"])
    outcome = current.result if isinstance(current.result, dict) else {}
    unit = info.get("unit", "steps")
    if current.status == "failed":
        st.session_state["vis_submit_error"] = f"{info['label']} failed: {current.error}"
    elif info.get("key") is None:  # followed after a reload: its view reads the picture from the workspace
        pass
    elif results().reload(info["key"]) is None:
        p = {**(current.progress or {}), **{k: outcome[k] for k in ("done", "total") if outcome.get(k) is not None}}
        if current.status == "done":
            st.session_state["vis_submit_error"] = (f"{info['label']} ended, but its picture is not in your workspace: "
                                                    "start it again.")
        elif p.get("total") is None:
            st.session_state["vis_stopped_note"] = (f"{info['label']} was stopped before it started: nothing to "
                                                    "show. Start it again when you are ready.")
        else:
            st.session_state["vis_stopped_note"] = (
                f"{info['label']} stopped after {p.get('done', 0)} of {p['total']} {unit}: nothing to show yet. "
                "Start it again when you are ready.")
    st.session_state.pop(JOB_KEY, None)


@st.fragment(run_every=0.5 if job is not None and job.active else None)
def job_progress():
    info = st.session_state.get(JOB_KEY)
    job_view(manager.get(info["id"]) if info else None, key="vis", on_end=job_ended,
             describe=count_progress(info.get("unit", "steps") if info else "steps", info["label"] if info else ""),
             stop_help=info.get("on_stop", "") if info else "")


def busy() -> bool:
    return job is not None and job.active


def show_result(key, render) -> bool:
    """Render a kept result (and say when it was stopped early); True when there was one."""
    found = results().get(key)
    if found is None:
        return False
    if found["stopped"]:
        st.caption(":material/stop_circle: Stopped early: the picture as it was then.")
    render(found["value"])
    return True


# ============================================================================ 3. views
st.subheader("3 · Inside the network", divider="gray")
with st.container():
    job_progress()
if st.session_state.get("vis_submit_error"):
    st.error(st.session_state.pop("vis_submit_error"), icon=":material/error:")
if st.session_state.get("vis_stopped_note"):
    st.info(st.session_state.pop("vis_stopped_note"), icon=":material/stop_circle:")

tab_act, tab_cam, tab_filters, tab_classes = st.tabs(
    ["Activations", "Saliency & Grad-CAM", "Filters", "Classes"], key="vis_view", on_change="rerun")


@st.cache_data(show_spinner="Computing the activations…", max_entries=16)
def activations(_model, model_key: str, digest: str, _image, names: tuple):
    return vis.activations(_model, _image, list(names))


if tab_act.open:
    with tab_act:
        if not conv_names:
            st.info("No convolutional layers.")
        else:
            acts_all = activations(model, model_key, digest, image, tuple(conv_names))
            blank = [vis.blank_fraction(acts_all[n]) for n in conv_names]
            st.plotly_chart(plots.layer_bars(conv_names, blank, title="Blank maps per layer (all zero for this image)",
                                             ytitle="blank maps"), key="vis_blank_fig")
            st.caption("Deeper layers answer to rarer, more specific patterns: more of their maps stay blank for any "
                       "one image. This sparsity is what the chapter points out.")
            c1, c2 = st.columns([3, 1])
            chosen = c1.multiselect("Layers to show", conv_names, default=conv_names[: min(2, len(conv_names))],
                                    key=f"vis_layers_{model_key}", help="Every channel of each chosen layer.")
            limit = int(c2.number_input("Channels per layer (at most)", 4, MAX_CHANNELS, 32, step=4,
                                        key="vis_channels", help="Deep layers have hundreds of maps."))
            for name in chosen:
                act = acts_all[name]
                k = act.shape[-1]
                shown_k = min(k, limit)
                st.markdown(f"**{name}** · {act.shape[0]} x {act.shape[1]} x {k} · "
                            f"{vis.blank_fraction(act):.0%} of its maps blank" + (f" · first {shown_k} shown" if k > shown_k else ""))
                maps = [act[:, :, i] for i in range(shown_k)]
                st.plotly_chart(plots.map_grid(maps, [f"{i}" for i in range(shown_k)], columns=8, row_height=150,
                                               colorbars=False), key=f"vis_maps_{name}")

@st.cache_data(show_spinner="Computing the map…", max_entries=64)
def cam_map(_model, model_key: str, digest: str, _image, klass: int, method: str, layer: str):
    return vis.class_activation_map(_model, _image, klass, method=method, layer_name=layer)


@st.cache_data(show_spinner="Computing the saliency map…", max_entries=64)
def saliency_map(_model, model_key: str, digest: str, _image, klass: int):
    """Vanilla gradients: one pass, computed here (SmoothGrad's many passes run as a job)."""
    return vis.saliency(_model, _image, klass, smooth_samples=0)


if tab_cam.open:
    with tab_cam:
        st.caption("Where in the image is the evidence for a class? Saliency: how much each pixel changes the "
                   "class score. Class activation maps: which regions of the last convolution's maps the class "
                   "draws on, weighted by gradients (Grad-CAM, Grad-CAM++) or by how much each map alone raises "
                   "the score (Score-CAM).")
        c1, c2, c3 = st.columns([2, 2, 1])
        klass = c1.selectbox("Class", range(len(class_names)), index=predicted, key=f"vis_cam_class_{model_key}",
                             format_func=lambda i: f"{i}: {class_names[i]}" + (" (predicted)" if i == predicted else ""),
                             help="The predicted class by default; any class can be asked about.")
        method = c2.segmented_control("Method", list(METHOD_TITLES), default="gradcam", format_func=METHOD_TITLES.get,
                                      key="vis_cam_method") or "gradcam"
        opacity = c3.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="vis_opacity", help="Of the map over the image.")
        c1, c2 = st.columns([3, 1])
        layers_down = conv_names[::-1]
        layer = c1.selectbox("Layer", layers_down, index=layers_down.index(vis_inputs.last_conv_layer(model)),
                             key=f"vis_cam_layer_{model_key}",
                             help="The last convolution by default: the most specific maps that still know where.")
        samples = int(c2.number_input("SmoothGrad samples", 0, 50, 20, key="vis_smooth",
                                      help="Average the gradients over so many noisy copies of the image: less "
                                           "speckle, more of the object. It runs in the background, with a "
                                           "progress bar and Stop. 0: vanilla gradients only."))
        cam_key = ("cam", model_key, digest, klass, method, layer)
        if method == "scorecam" and cam_key not in results():
            st.info(f"Score-CAM runs the model once per map of the layer (at most {SCORECAM_MAX_CHANNELS} "
                    "maps): it runs in the background, with a progress bar and Stop.", icon=":material/hourglass_top:")
            st.button("Compute Score-CAM", key="vis_run_scorecam", disabled=busy(), icon=":material/play_arrow:",
                      on_click=submit, args=(cam_key, "Score-CAM", "scorecam", {"class_index": klass, "layer": layer}),
                      kwargs={"model_ref": model_ref, "image": image, "unit": "masked images",
                              "on_stop": "Stops after the current batch of masked images. A stopped Score-CAM "
                                         "leaves no map: started again, it may have to start over."})
            cam = None
        elif method == "scorecam":
            cam = results()[cam_key]["value"]
        else:
            try:
                cam = cam_map(model, model_key, digest, image, klass, method, layer)
            except CvcoreError as err:
                show_error(err)
                cam = None
        c1, c2, c3 = st.columns(3)
        if cam is not None:
            c1.plotly_chart(plots.overlay(image, cam, opacity=opacity,
                                          title=f"{METHOD_TITLES[method]}: {class_names[klass]}"), key="vis_cam_fig")
            if not cam.any():
                c1.caption(f"All zero: nothing in {layer}'s maps raises the score of {class_names[klass]} here. "
                           "Try the predicted class, or another layer.")
        try:
            vanilla = saliency_map(model, model_key, digest, image, klass)
        except CvcoreError as err:
            show_error(err)
        else:
            c2.plotly_chart(plots.overlay(image, vanilla, opacity=max(opacity, 0.6), title="Saliency (vanilla gradients)"),
                            key="vis_saliency_fig")
            smooth_key = ("smooth", model_key, digest, klass, samples)
            with c3:
                if samples and not show_result(smooth_key, lambda smooth: st.plotly_chart(
                        plots.overlay(image, smooth, opacity=max(opacity, 0.6), title=f"SmoothGrad ({samples} samples)"),
                        key="vis_smooth_fig")):
                    st.caption(f"SmoothGrad runs the model on {samples} noisy copies of the image: it runs in the "
                               "background, with a progress bar and Stop.")
                    st.button(f"Compute SmoothGrad ({samples} samples)", key="vis_run_smooth", disabled=busy(),
                              icon=":material/play_arrow:", on_click=submit,
                              args=(smooth_key, "SmoothGrad", "smoothgrad", {"class_index": klass, "samples": samples}),
                              kwargs={"model_ref": model_ref, "image": image, "unit": "noisy copies",
                                      "on_stop": "Stops after the current batch of noisy copies and keeps the "
                                                 "average of those so far."})
        st.caption("Vanilla gradients can look alike for any model (a known weakness of saliency); SmoothGrad "
                   "averages away the speckle. Grad-CAM is coarse (the last convolution's grid) but class-specific.")


def ascent_settings(prefix: str, steps: int, size_default: int):
    """Steps, step size and picture size: the gradient-ascent knobs of the seed."""
    c1, c2, c3 = st.columns(3)
    steps = int(c1.number_input("Steps", 1, 500, steps, key=f"{prefix}_steps",
                                help="Gradient-ascent steps: more, a stronger pattern (and a longer wait)."))
    step_size = float(c2.number_input("Step size", 0.01, 100.0, 1.0, key=f"{prefix}_step_size",
                                      help="How far each step moves the image along the normalized gradient."))
    size = None
    if h is None:  # the model takes any size: the picture's size is ours to choose
        size = int(c3.number_input("Size (px)", 32, 512, size_default, step=16, key=f"{prefix}_size"))
    else:
        c3.caption(f"The picture is the model's input size, {h} x {w}.")
    return steps, step_size, size


if tab_filters.open:
    with tab_filters:
        if not conv_names:
            st.info("No convolutional layers.")
        else:
            try:
                weights, kernel_images = ascent.first_layer_kernels(model)
            except CvcoreError:
                weights, kernel_images = None, []
            if kernel_images:
                st.markdown(f"**The first layer's kernels, drawn as weights** · {weights.shape[0]} x {weights.shape[1]} x "
                            f"{weights.shape[2]} x {weights.shape[3]}: what the first layer looks for, straight from "
                            "its weights (bright: positive, dark: negative).")
                st.image([enlarge(k, 48) for k in kernel_images[:64]], caption=[f"{i}" for i in range(min(64, len(kernel_images)))],
                         width=56)
            st.markdown("**What a filter responds to most**: start from a gray image with a little noise and "
                        "climb the gradient of one filter's mean activation, normalizing the gradient at each step "
                        "(the seed's recipe).")
            c1, c2, c3 = st.columns([2, 1, 2])
            layer = c1.selectbox("Layer", conv_names, index=conv_names.index(vis_inputs.last_conv_layer(model)),
                                 key=f"vis_f_layer_{model_key}",
                                 help="Early layers: edges and colours. Deep layers: textures and parts of objects.")
            n_filters = vis_inputs.submodel(model, [layer]).output_shape[-1]
            which = c2.radio("Show", ["The first N", "One filter"], key="vis_f_which",
                             help="A grid of the layer's first filters (optimized together, as one batch), "
                                  "or one filter by its index.")
            if which == "One filter":
                index = int(c3.number_input(f"Filter index (0–{n_filters - 1})", 0, n_filters - 1, 0,
                                            key=f"vis_f_index_{model_key}_{layer}"))
                indices, label = [index], f"filter {index} of {layer}"
            else:
                count = int(c3.slider("First N filters", 1, min(32, n_filters), min(8, n_filters), key="vis_f_count",
                                      help=f"This layer has {n_filters} filters."))
                indices, label = list(range(count)), f"the first {count} filters of {layer}"
            steps, step_size, size = ascent_settings("vis_f", 30, 128)
            key = ("filters", model_key, layer, tuple(indices), steps, step_size, size)
            if not show_result(key, lambda imgs: st.image([enlarge(i, 150) for i in imgs],
                                                          caption=[f"filter {i}" for i in indices], width=150)):
                st.button(f"Visualize {label}", key="vis_run_filters", type="primary",
                          disabled=busy(), icon=":material/play_arrow:", on_click=submit,
                          args=(key, label, "filters", {"layer": layer, "indices": indices, "steps": steps,
                                                        "step_size": step_size, "size": size}),
                          kwargs={"model_ref": model_ref})

if tab_classes.open:
    with tab_classes:
        st.markdown("**What the model thinks a class looks like**: climb the gradient of one class's score "
                    "(before the softmax) from a gray image. The seed asks VGG16 for ImageNet class 184, the "
                    "Irish terrier.")
        default = 184 if len(class_names) == 1000 else predicted
        klass = st.selectbox("Class", range(len(class_names)), index=default, key=f"vis_c_class_{model_key}",
                             format_func=lambda i: f"{i}: {class_names[i]}")
        steps, step_size, size = ascent_settings("vis_c", 60, 224)
        key = ("class", model_key, klass, steps, step_size, size)

        def render_class(img):
            c1, c2 = st.columns([1, 2])
            c1.image(enlarge(img, 300), caption=f"{class_names[klass]}, as {model.name} sees it", width=300)
            check = vis.top_predictions(model, img, k=min(3, len(class_names)), class_names=class_names)
            c2.plotly_chart(plots.probability_bars([p for _, _, p in check], [n for _, n, _ in check], height=220,
                                                   title="What the model predicts for this picture"),
                            key="vis_class_check_fig")

        if not show_result(key, render_class):
            st.button(f"Visualize class {klass} ({class_names[klass]})", key="vis_run_class", type="primary",
                      disabled=busy(), icon=":material/play_arrow:",
                      on_click=submit, args=(key, f"class {class_names[klass]}", "class",
                                             {"class_index": klass, "steps": steps, "step_size": step_size,
                                              "size": size}),
                      kwargs={"model_ref": model_ref})

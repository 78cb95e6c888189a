"""What ConvNets learn: activations, filters and classes by gradient ascent, saliency and class activation maps.

Reads top-down: the model (trained on the Train page, a famous ImageNet model,
or an uploaded .keras file), the image and what the model predicts for it,
then four views, each computed by cvcore.visualize. Gradient ascent and
Score-CAM are long: they run as background jobs with a progress bar and a
Stop button, and their results are kept so that a second look is instant.
"""
import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from cvcore import applications, jobs, saving
from cvcore import visualize as vis
from cvcore.errors import CvcoreError
from cvcore.images import fit_within
from cvcore.visualize import ascent
from cvcore.visualize.cam import SCORECAM_MAX_CHANNELS
from cvcore import model_inputs as vis_inputs
from ui import plots
from ui.common import dataset, show_error, wide_layout
from ui.datasets import session_workspace
from ui.image_source import pick_image
from ui.runs import run_arrays, run_model
from ui.jobs import count_progress, job_view
from ui.workspace import current_workspace, job_owner

JOB_KEY = "vis_job"  # {"id", "key", "label"} of the running visualization job
RESULTS_KEY = "vis_results"  # key -> result of a finished job, this session's
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
    return model, f"run:{run['id']}", list(class_names), run


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
        model = weights_from_upload(name, up)
        return model, f"app:{name}:{up.file_id}", applications.imagenet_class_names(), None
    model, why = application(name, "imagenet" if weights == "ImageNet" else "random")
    if model is None:
        st.warning(why, icon=":material/cloud_off:")
        st.button(f"Explore {title} with random weights instead", key="vis_use_random", on_click=use_random_weights,
                  icon=":material/shuffle:", help="The same architecture: layers, shapes and activations are real; "
                                                  "predictions and pictures of filters mean nothing yet.")
        st.stop()
    if weights != "ImageNet":
        st.caption(":material/info: Random weights: the structure is real, the predictions and pictures are not.")
    return model, f"app:{name}:{'imagenet' if weights == 'ImageNet' else 'random'}", applications.imagenet_class_names(), None


def weights_from_upload(name, up):
    cache = st.session_state.setdefault("vis_uploaded_weights", {})
    if cache.get("id") != (name, up.file_id):
        folder = session_workspace().new_folder("weights")
        path = Path(folder) / "weights.h5"
        path.write_bytes(up.getvalue())
        try:
            cache.update(id=(name, up.file_id), model=applications.load_application(name, weights=path), error=None)
        except CvcoreError as err:
            cache.update(id=(name, up.file_id), model=None, error=str(err))
        finally:
            path.unlink(missing_ok=True)
    if cache["model"] is None:
        show_error(CvcoreError(cache["error"]), "Upload Keras' own weights file for this network.")
        st.stop()
    return cache["model"]


def uploaded_model():
    up = st.file_uploader("A Keras model (.keras)", type=["keras"], key="vis_model_file",
                          help="Loaded in Keras' safe mode: a file that would run code is refused.")
    if up is None:
        st.info("Upload a .keras file (the Train page saves one), or pick another model.", icon=":material/upload:")
        st.stop()
    cache = st.session_state.setdefault("vis_uploaded_model", {})
    if cache.get("id") != up.file_id:
        try:
            cache.update(id=up.file_id, model=saving.load_model_bytes(up.getvalue()), error=None)
        except CvcoreError as err:
            cache.update(id=up.file_id, model=None, error=str(err))
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
    return model, f"upload:{up.file_id}:{kind}", names, None


model, model_key, class_names, run = {"Trained here": trained_model, "ImageNet model": imagenet_model,
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


# ============================================================================ jobs: long work in the background
class Results:
    """The pictures that long work made, by what decides them: this session's in memory, and every one in
    the workspace on disk (a reload, a restart or another tab finds them there)."""

    def __init__(self):
        self.memory = st.session_state.setdefault(RESULTS_KEY, {})

    def get(self, key):
        if key not in self.memory:
            saved = ws.load_result(repr(key))
            if saved is None:
                return None
            self.keep(key, {"value": saved["value"], "stopped": bool(saved["stopped"])}, save=False)
        return self.memory[key]

    def __contains__(self, key):
        return self.get(key) is not None

    def __getitem__(self, key):
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def keep(self, key, value, save=True):
        if save:
            try:
                ws.save_result(repr(key), value=value["value"], stopped=value["stopped"])
            except CvcoreError as err:  # a full disk: shown now, kept for this session
                st.session_state["vis_submit_error"] = f"{err} The picture is kept until you leave this page."
        self.memory[key] = value
        while len(self.memory) > MAX_RESULTS:
            self.memory.pop(next(iter(self.memory)))


def results() -> Results:
    return Results()


def keep(key, value) -> None:
    results().keep(key, value)


def submit(key, label, fn, unit="steps", on_stop="Stops after the current step and keeps the picture so far.",
           resumes=False) -> None:
    """Run ``fn(on_progress, should_stop)`` as this session's background job; its result is kept under ``key``.

    ``unit`` names what the progress counts; ``on_stop`` is the Stop button's help; ``resumes`` says that a
    stopped job that left nothing goes on from where it stopped when started again (Score-CAM)."""
    def work(ctx):
        return fn(lambda done, total: ctx.report({"done": done, "total": total}), ctx.should_stop)

    try:
        job = manager.submit(job_owner(), work, name=label)
    except CvcoreError as err:  # one job per session: a training run or a folder run may be going
        st.session_state["vis_submit_error"] = str(err)
        return
    st.session_state[JOB_KEY] = {"id": job.id, "key": key, "label": label, "unit": unit, "on_stop": on_stop,
                                 "resumes": resumes}


active = st.session_state.get(JOB_KEY)
job = manager.get(active["id"]) if active else None


def job_ended(current) -> None:
    """Keep the picture (or a note of how far it got, or the failure) for the view below."""
    info = st.session_state[JOB_KEY]
    result = current.result
    if current.status == "failed":
        st.session_state["vis_submit_error"] = f"{info['label']} failed: {current.error}"
    elif result is None or (isinstance(result, np.ndarray) and result.size == 0):
        p = current.progress
        st.session_state["vis_stopped_note"] = (
            f"{info['label']} stopped after {p.get('done', 0)} of {p.get('total', '?')} {info.get('unit', 'steps')}: "
            "nothing to show yet. " + ("Start it again to go on from there." if info.get("resumes")
                                       else "Start it again when you are ready."))
    else:
        keep(info["key"], {"value": result, "stopped": current.status == "stopped"})
    st.session_state.pop(JOB_KEY, None)


@st.fragment(run_every=0.5 if job is not None and job.active else None)
def job_progress():
    info = st.session_state.get(JOB_KEY)
    job_view(manager.get(info["id"]) if info else None, key="vis", on_end=job_ended,
             describe=count_progress(info.get("unit", "steps") if info else "steps", info["label"] if info else ""),
             stop_help=info.get("on_stop", "") if info else "")


def busy() -> bool:
    return job is not None and job.active


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
def saliency_map(_model, model_key: str, digest: str, _image, klass: int, samples: int):
    return vis.saliency(_model, _image, klass, smooth_samples=samples)


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
                                           "speckle, more of the object. 0: vanilla gradients only."))
        cam_key = ("cam", model_key, digest, klass, method, layer)
        if method == "scorecam" and cam_key not in results():
            st.info(f"Score-CAM runs the model once per map of the layer (at most {SCORECAM_MAX_CHANNELS} "
                    "maps): it runs in the background, with a progress bar and Stop.", icon=":material/hourglass_top:")
            st.button("Compute Score-CAM", key="vis_run_scorecam", disabled=busy(), icon=":material/play_arrow:",
                      on_click=submit, args=(cam_key, "Score-CAM",
                                             lambda progress, stop: vis.class_activation_map(
                                                 model, image, klass, method="scorecam", layer_name=layer,
                                                 on_progress=progress, should_stop=stop),
                                             "masked images", "Stops after the current batch of masked images; "
                                             "started again, Score-CAM goes on from there.", True))
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
            vanilla = saliency_map(model, model_key, digest, image, klass, 0)
            smooth = saliency_map(model, model_key, digest, image, klass, samples) if samples else None
        except CvcoreError as err:
            show_error(err)
        else:
            c2.plotly_chart(plots.overlay(image, vanilla, opacity=max(opacity, 0.6), title="Saliency (vanilla gradients)"),
                            key="vis_saliency_fig")
            if smooth is not None:
                c3.plotly_chart(plots.overlay(image, smooth, opacity=max(opacity, 0.6),
                                              title=f"SmoothGrad ({samples} samples)"), key="vis_smooth_fig")
        st.caption("Vanilla gradients can look alike for any model (a known weakness of saliency); SmoothGrad "
                   "averages away the speckle. Grad-CAM is coarse (the last convolution's grid) but class-specific.")


def enlarge(img, side: int = 48):
    """A small picture (a 3 x 3 kernel, a 28 x 28 digit) enlarged with square pixels, so that it is seen sharp."""
    img = np.asarray(img)
    scale = max(1, side // max(img.shape[:2]))
    return np.kron(img, np.ones((scale, scale) + ((1,) if img.ndim == 3 else ()), img.dtype))


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


def show_result(key, render) -> bool:
    """Render a kept result (and say when it was stopped early); True when there was one."""
    found = results().get(key)
    if found is None:
        return False
    if found["stopped"]:
        st.caption(":material/stop_circle: Stopped early: the picture as it was then.")
    render(found["value"])
    return True


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
                st.image([enlarge(k) for k in kernel_images[:64]], caption=[f"{i}" for i in range(min(64, len(kernel_images)))],
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
                          disabled=busy(), icon=":material/play_arrow:",
                          on_click=submit, args=(key, label,
                                                 lambda progress, stop: ascent.maximize_filters(
                                                     model, layer, indices, steps=steps,
                                                     step_size=step_size, size=size, on_progress=progress,
                                                     should_stop=stop)))

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
                      on_click=submit, args=(key, f"class {class_names[klass]}",
                                             lambda progress, stop: ascent.maximize_class(
                                                 model, klass, steps=steps, step_size=step_size, size=size,
                                                 on_progress=progress, should_stop=stop)))

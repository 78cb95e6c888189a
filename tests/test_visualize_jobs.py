"""The Visualize page's jobs (cvcore.visualize.jobs), run in this process as a Ray worker runs them
(cvcore.jobs.run_inline): models named by reference and kept loaded per process, images read from
the workspace, pictures kept in the workspace as the page reads them, progress and Stop."""
import importlib
import os

import numpy as np
import pytest

from cvcore import visualize as vis
from cvcore.errors import CvcoreError
from cvcore.jobs import LocalContext, run_inline
from cvcore.visualize import jobs as vis_jobs
from cvcore.visualize import smoothgrad

keras = pytest.importorskip("keras")

TARGET = "cvcore.visualize.jobs:picture_job"
pytestmark = pytest.mark.usefixtures("offline_weights")  # nothing downloads


@pytest.fixture(scope="module")
def digits_model():
    """A small digits CNN (the last convolution has 16 maps), trained a few steps so its maps are not flat."""
    from cvcore.data import load_dataset

    (x, y), _, _ = load_dataset("digits")
    model = keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, activation="relu", name="conv2d"),
        keras.layers.MaxPooling2D(name="pool"), keras.layers.Conv2D(16, 3, activation="relu", name="conv2d_1"),
        keras.layers.GlobalAveragePooling2D(name="gap"), keras.layers.Dense(10, activation="softmax", name="dense")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x[:512, ..., None] / 255.0, y[:512], epochs=1, batch_size=64, verbose=0)
    return model, x[0]


@pytest.fixture(autouse=True)
def fresh_models():
    vis_jobs.clear_models()
    importlib.import_module("cvcore.visualize.cam").clear_cache()  # no engine of another test's model
    yield
    vis_jobs.clear_models()


@pytest.fixture
def workspace(tmp_path):
    from cvcore.workspace import Store, new_token

    return Store(tmp_path / "store").anonymous(new_token())


def with_run(ws, model) -> str:
    rec = ws.new_run("upload", name="Run 1", title="digits")
    ws.save_model(rec.id, model)
    return rec.id


def image_file(ws, image) -> str:
    path = ws.new_folder("vis-image") / "image.npy"
    np.save(path, image, allow_pickle=False)
    return str(path)


def config(ws, model_ref, technique, params, key, image=None) -> dict:
    cfg = {"workspace": ws.ref(), "model": model_ref, "technique": technique, "params": params, "key": key}
    if image is not None:
        cfg["image"] = image
    return cfg


def test_gradient_ascent_jobs_keep_the_pictures_the_functions_make(workspace, digits_model):
    model, _ = digits_model
    run_id = with_run(workspace, model)
    ctx = LocalContext()
    out = run_inline(TARGET, config(workspace, {"run": run_id}, "filters",
                                    {"layer": "conv2d_1", "indices": [0, 3, 5], "steps": 10, "step_size": 1.0,
                                     "size": None}, "filters key"), ctx)
    assert out == {"saved": True, "stopped": False, "done": 10, "total": 10}
    assert ctx.progress == {"done": 10, "total": 10}
    kept = workspace.load_result("filters key")
    expected = vis.maximize_filters(workspace.load_model(run_id), "conv2d_1", [0, 3, 5], steps=10)
    np.testing.assert_array_equal(kept["value"], expected)
    assert kept["value"].shape == (3, 28, 28, 1) and not bool(kept["stopped"])

    out = run_inline(TARGET, config(workspace, {"run": run_id}, "class",
                                    {"class_index": 7, "steps": 10, "step_size": 1.0, "size": None}, "class key"))
    assert out == {"saved": True, "stopped": False, "done": 10, "total": 10}
    np.testing.assert_array_equal(workspace.load_result("class key")["value"],
                                  vis.maximize_class(workspace.load_model(run_id), 7, steps=10))


def test_scorecam_and_smoothgrad_jobs_read_the_image_from_the_workspace(workspace, digits_model):
    model, image = digits_model
    run_id = with_run(workspace, model)
    path = image_file(workspace, image)
    ctx = LocalContext()
    out = run_inline(TARGET, config(workspace, {"run": run_id}, "scorecam", {"class_index": 3, "layer": "conv2d_1"},
                                    "cam key", path), ctx)
    assert out == {"saved": True, "stopped": False, "done": 16, "total": 16} and ctx.reports >= 3
    fresh = workspace.load_model(run_id)
    np.testing.assert_allclose(workspace.load_result("cam key")["value"],
                               vis.class_activation_map(fresh, image, 3, method="scorecam", layer_name="conv2d_1"),
                               atol=1e-6)
    out = run_inline(TARGET, config(workspace, {"run": run_id}, "smoothgrad", {"class_index": 3, "samples": 12},
                                    "smooth key", path))
    assert out == {"saved": True, "stopped": False, "done": 12, "total": 12}
    smooth = workspace.load_result("smooth key")["value"]
    np.testing.assert_array_equal(smooth, vis.saliency(fresh, image, 3, smooth_samples=12))
    assert smooth.shape == image.shape[:2] and smooth.dtype == np.float32


def test_stop_keeps_what_there_is_and_says_how_far_it_got(workspace, digits_model):
    model, image = digits_model
    run_id = with_run(workspace, model)
    path = image_file(workspace, image)
    # Score-CAM stopped before its first batch: no map, nothing kept.
    out = run_inline(TARGET, config(workspace, {"run": run_id}, "scorecam", {"class_index": 3}, "cam", path),
                     LocalContext(stop_after=1))
    assert out == {"saved": False, "done": 0, "total": 16}
    assert workspace.load_result("cam") is None
    # A class stopped after two reports: the picture as it was then, marked stopped.
    out = run_inline(TARGET, config(workspace, {"run": run_id}, "class", {"class_index": 2, "steps": 50}, "class"),
                     LocalContext(stop_after=2))
    assert out == {"saved": True, "stopped": True, "done": 10, "total": 50}
    kept = workspace.load_result("class")
    assert bool(kept["stopped"]) and kept["value"].shape == (28, 28, 1)
    # Filters stopped before the first step: nothing to keep.
    stopped = LocalContext()
    stopped.stop()
    out = run_inline(TARGET, config(workspace, {"run": run_id}, "filters", {"layer": "conv2d", "indices": [0]},
                                    "filters"), stopped)
    assert out["saved"] is False and workspace.load_result("filters") is None


def test_smoothgrad_stopped_mid_way_keeps_the_average_so_far(workspace, digits_model):
    model, image = digits_model
    ctx = LocalContext(stop_after=2)  # (0, n), then the first batch's report: stop
    m, done = smoothgrad(model, image, 3, 200, on_progress=lambda d, t: ctx.report({"done": d, "total": t}),
                                  should_stop=ctx.should_stop)
    assert 0 < done < 200 and ctx.progress == {"done": done, "total": 200}
    assert m.shape == (28, 28) and float(m.max()) == 1.0
    np.testing.assert_array_equal(smoothgrad(model, image, 3, 200)[0],
                                  vis.saliency(model, image, 3, smooth_samples=200))


def test_models_are_kept_loaded_per_process_until_their_file_changes(workspace, digits_model, monkeypatch):
    from cvcore.workspace import Workspace

    model, _ = digits_model
    run_id = with_run(workspace, model)
    loads = []
    real = Workspace.load_model
    monkeypatch.setattr(Workspace, "load_model", lambda self, rid: loads.append(rid) or real(self, rid))
    first = vis_jobs.open_model(workspace, {"run": run_id})
    for _ in range(3):  # a job per call, as a reused worker runs them
        run_inline(TARGET, config(workspace, {"run": run_id}, "class", {"class_index": 1, "steps": 5}, "k"))
        keras.backend.clear_session()  # what the worker does after every job: the kept model still works
    assert loads == [run_id] and vis_jobs.open_model(workspace, {"run": run_id}) is first
    # A newer save of the run (the Train page trained on): loaded again.
    st = os.stat(workspace.model_path(run_id))
    workspace.save_model(run_id, model)
    os.utime(workspace.model_path(run_id), ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert vis_jobs.open_model(workspace, {"run": run_id}) is not first and loads == [run_id, run_id]
    # Only the last MAX_MODELS are kept.
    others = [with_run(workspace, model) for _ in range(vis_jobs.MAX_MODELS)]
    for other in others:
        vis_jobs.open_model(workspace, {"run": other})
    vis_jobs.open_model(workspace, {"run": run_id})
    assert loads.count(run_id) == 3


def test_an_uploaded_keras_file_and_its_preprocessing(workspace, digits_model):
    from cvcore import model_inputs, saving

    model, _ = digits_model
    path = workspace.new_folder("uploaded_model") / "model.keras"
    path.write_bytes(saving.model_to_bytes(model))
    raw = vis_jobs.open_model(workspace, {"file": str(path), "preprocessing": "raw"})
    unit = vis_jobs.open_model(workspace, {"file": str(path)})
    assert model_inputs.preprocessing_of(raw) == "raw" and model_inputs.preprocessing_of(unit) == "unit"
    assert raw is not unit  # a picture computed for one preprocessing is never reused for the other
    out = run_inline(TARGET, config(workspace, {"file": str(path), "preprocessing": "raw"}, "filters",
                                    {"layer": "conv2d", "indices": [1], "steps": 5}, "upload"))
    assert out["saved"] and workspace.load_result("upload")["value"].shape == (1, 28, 28, 1)


def test_an_uploaded_weights_file_of_an_imagenet_model(workspace):
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    from cvcore import applications

    mobilenet = applications.load_application("mobilenetv2", weights=None)
    path = workspace.new_folder("uploaded_weights") / "weights.h5"
    with h5py.File(path, "w") as f:  # the legacy layout of Keras' published ImageNet files
        legacy_h5_format.save_weights_to_hdf5_group(f, mobilenet)
    loaded = vis_jobs.open_model(workspace, {"application": "mobilenetv2", "weights_file": str(path)})
    for a, b in zip(loaded.weights[:3], mobilenet.weights[:3]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    random = vis_jobs.open_model(workspace, {"application": "mobilenetv2", "weights": "random"})
    assert random is not loaded and random.name == loaded.name
    with pytest.raises(CvcoreError, match="ImageNet weights for MobileNetV2 could not be had"):
        vis_jobs.open_model(workspace, {"application": "mobilenetv2", "weights": "imagenet"})


@pytest.mark.parametrize("model_ref, match", [
    ({"file": "/etc/passwd"}, "inside the workspace"),
    ({"file": "{ws}/files/gone/model.keras"}, "no longer in your workspace"),
    ({"run": "0" * 32}, "has no saved model"),
    ({"run": "../../x"}, "run_id"),
    ({"run": "r1", "file": "x"}, "one of 'run', 'application' or 'file'"),
    ("model.keras", "must be a dict"),
    ({"application": "mobilenetv2", "weights": "imagenet21k"}, "`weights`"),
])
def test_a_model_reference_that_names_nothing_usable_is_refused(workspace, model_ref, match):
    if isinstance(model_ref, dict) and "{ws}" in str(model_ref.get("file")):
        model_ref = {"file": model_ref["file"].format(ws=workspace.path)}
    with pytest.raises(CvcoreError, match=match):
        run_inline(TARGET, config(workspace, model_ref, "class", {"class_index": 0}, "k"))


def test_bad_arguments_are_named(workspace, digits_model, tmp_path):
    model, image = digits_model
    run_id = with_run(workspace, model)
    ref = {"run": run_id}
    with pytest.raises(CvcoreError, match="`technique`"):
        run_inline(TARGET, config(workspace, ref, "deepdream", {}, "k"))
    with pytest.raises(CvcoreError, match="takes no parameter 'octaves'"):
        run_inline(TARGET, config(workspace, ref, "class", {"class_index": 0, "octaves": 3}, "k"))
    with pytest.raises(CvcoreError, match="needs an image"):
        run_inline(TARGET, config(workspace, ref, "scorecam", {"class_index": 0}, "k"))
    outside = tmp_path / "image.npy"
    np.save(outside, image)
    with pytest.raises(CvcoreError, match="inside the workspace"):
        run_inline(TARGET, config(workspace, ref, "smoothgrad", {"class_index": 0}, "k", str(outside)))
    pickled = workspace.new_folder("vis-image") / "image.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CvcoreError, match="cannot be read"):
        run_inline(TARGET, config(workspace, ref, "smoothgrad", {"class_index": 0}, "k", str(pickled)))
    with pytest.raises(CvcoreError, match="class_index"):
        run_inline(TARGET, config(workspace, ref, "class", {"class_index": 10}, "k"))
    assert workspace.load_result("k") is None

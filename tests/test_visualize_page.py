"""AppTest tests of the Visualize page: a model trained here, VGG16 without its ImageNet weights, uploads,
and its long work (gradient ascent, Score-CAM, SmoothGrad) as jobs on the session's Ray: the progress bar,
Stop (running and queued), a failure said plainly, and pictures kept in the workspace that a reload finds."""
import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from apptest_helpers import assert_clean, errors, metrics, rerun_until, wait_for_job_end, wait_until, workspace_of

keras = pytest.importorskip("keras")

APP = "../app.py"
TIMEOUT = 180


def open_page(token=None, **state):
    """The Visualize page through app.py (its links to other pages need the navigation), with session state,
    in the workspace of ``token`` when given (as a workspace link opens it)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if token is not None:
        at.query_params["ws"] = token
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page("pages/visualize.py").run()
    assert_clean(at)
    return at


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path, offline_weights):
    """No downloads: MNIST and ImageNet weights (tests/conftest.py) fail as they do here; caches start empty."""
    def no_download(*args, **kwargs):
        raise Exception("URL fetch failure on https://example/mnist.npz: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", no_download)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


@pytest.fixture(scope="module")
def digits_run():
    """A run as the Train page keeps it: a small CNN trained one epoch on the bundled digits."""
    from cvcore.data import load_dataset

    (x, y), _, _ = load_dataset("digits")
    model = keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, activation="relu", name="conv2d"),
        keras.layers.MaxPooling2D(name="pool"), keras.layers.Conv2D(16, 3, activation="relu", name="conv2d_1"),
        keras.layers.GlobalAveragePooling2D(name="gap"), keras.layers.Dense(10, activation="softmax", name="dense")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[..., None] / 255.0, y, epochs=2, batch_size=64, verbose=0)
    return {"title": "tiny CNN", "model": model}


def workspace_with_model(model, title: str) -> str:
    """A new anonymous workspace holding one run with ``model`` (as the Train page keeps a loaded one); its token."""
    from cvcore.workspace import Store, new_token

    token = new_token()
    ws = Store().anonymous(token)
    rec = ws.new_run("upload", name="Run 1", title=title, data={"dataset": "digits"})
    ws.save_model(rec.id, model)
    rec.has_model, rec.status = True, "finished"
    ws.save_run(rec)
    return token


def constant_model(klass: int):
    """A digits model that always predicts ``klass`` (every weight zero, one bias up)."""
    bias = np.zeros(10, "float32")
    bias[klass] = 5.0
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3, name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax", name="out")])
    dense = model.get_layer("out")
    dense.set_weights([np.zeros_like(dense.get_weights()[0]), bias])
    return model


def test_two_sessions_with_loaded_models_each_see_their_own_predictions():
    """Models loaded from .keras files by two users (runs with no job): the server-wide caches of the
    Visualize page are keyed by each run's own random id, so one user's predictions never reach the
    other (they once shared the key of every loaded model, "run:None")."""
    sessions = {}
    for klass in (3, 7):
        sessions[klass] = open_page(workspace_with_model(constant_model(klass), f"uploaded always-{klass}"))
    for klass, at in sessions.items():
        open_view(at, "Saliency & Grad-CAM")
        # The class picker starts on the predicted class, as the page read it from the cached predictions.
        picker = next(s for s in at.selectbox if s.key.startswith("vis_cam_class_"))
        assert picker.value == klass, f"the session whose model always says {klass} was shown {picker.value}"


def page_with_run(run):
    return open_page(workspace_with_model(run["model"], run["title"]))


def open_view(at, name):
    at.session_state["vis_view"] = name
    at.run()
    assert_clean(at)
    return at


def wait_for_job(at, seconds=120):
    label = at.session_state["vis_job"]["label"] if "vis_job" in at.session_state else "the job"
    wait_for_job_end(at, "vis_job", timeout=seconds, what=f"the background job ({label}) ending")
    rerun_until(at, lambda at: "vis_job" not in at.session_state, timeout=seconds,
                what=f"the background job ({label}) finishing and its result reaching the page")


def job_now(at):
    """The latest news of the job the page follows (a snapshot: asked again on every call)."""
    from cvcore import jobs

    return jobs.default_manager().get(at.session_state["vis_job"]["id"])


def compute_smoothgrad(at):
    """Press "Compute SmoothGrad (N samples)" and wait for its job to end and its picture to show."""
    samples = at.number_input(key="vis_smooth").value
    button = at.button(key="vis_run_smooth")
    assert button.label == f"Compute SmoothGrad ({samples} samples)"
    button.click().run()
    assert_clean(at)
    wait_for_job(at)
    assert not errors(at)
    return at


def image_folders(at) -> list:
    """The images the page saved into the workspace for its jobs (removed once each job has ended)."""
    return list(workspace_of(at).path.glob("files/vis-image-*"))


def progress_bar(at) -> tuple:
    """(value 0..100, text) of the page's progress bar, or (None, "") when there is none."""
    bars = at.get("progress")
    return (bars[0].proto.value, str(bars[0].proto.text)) if bars else (None, "")


def test_no_model_trained_yet_points_to_the_train_page():
    at = open_page(vis_model_source="Trained here")
    assert "No model has been trained" in at.info[0].value


def test_a_model_trained_here_shows_predictions_and_activations(digits_run):
    at = page_with_run(digits_run)
    assert metrics(at)["Input"] == "28 x 28 x 1" and metrics(at)["Classes"] == "10"
    assert at.session_state["vis_model_source"] == "Trained here"
    figures = at.get("plotly_chart")
    assert len(figures) >= 3  # the image, the top predictions, the blank-maps bars
    assert any("conv2d" in m.value and "blank" in m.value for m in at.markdown)


def test_saliency_and_every_cam_method_render(digits_run):
    at = open_view(page_with_run(digits_run), "Saliency & Grad-CAM")
    assert len(at.get("plotly_chart")) >= 4  # image, top-5, CAM, vanilla saliency (SmoothGrad is a job)
    at = compute_smoothgrad(at)
    assert len(at.get("plotly_chart")) >= 5  # image, top-5, CAM, saliency, SmoothGrad
    assert any(k[0] == "smooth" and k[4] == 20 for k in at.session_state["vis_results"])
    at.segmented_control(key="vis_cam_method").set_value("gradcam++").run()
    assert_clean(at)
    at.segmented_control(key="vis_cam_method").set_value("scorecam").run()
    charts = len(at.get("plotly_chart"))
    at.button(key="vis_run_scorecam").click().run()
    wait_for_job(at)
    assert not errors(at)
    assert any(k[0] == "cam" and k[4] == "scorecam" for k in at.session_state["vis_results"])
    assert len(at.get("plotly_chart")) == charts + 1  # the Score-CAM map
    assert not image_folders(at), "the images saved for the jobs were left in the workspace"

    # A reload (a new session on the same workspace link, nothing in memory): both pictures are read from
    # the workspace, with no job run again.
    again = open_view(open_page(at.query_params["ws"]), "Saliency & Grad-CAM")
    again.segmented_control(key="vis_cam_method").set_value("scorecam").run()
    assert_clean(again)
    assert "vis_job" not in again.session_state and len(again.get("plotly_chart")) == charts + 1
    assert not [b for b in again.button if b.key in ("vis_run_scorecam", "vis_run_smooth")]


def test_filters_and_classes_by_gradient_ascent(digits_run):
    at = open_view(page_with_run(digits_run), "Filters")
    at.number_input(key="vis_f_steps").set_value(5).run()
    at.button(key="vis_run_filters").click().run()
    wait_for_job(at)
    shown = at.get("image")
    assert shown, "no pictures of filters"
    at = open_view(at, "Classes")
    at.number_input(key="vis_c_steps").set_value(10).run()
    at.button(key="vis_run_class").click().run()
    wait_for_job(at)
    assert not errors(at)
    assert any(k[0] == "class" for k in at.session_state["vis_results"])
    pictures = len(at.get("image"))

    # A reload (a new session with the same workspace link, nothing in memory): the picture is there at
    # once, read from the workspace, with no job run again.
    again = open_page(at.query_params["ws"])
    assert "vis_results" not in again.session_state or not again.session_state["vis_results"]
    again = open_view(again, "Classes")
    again.number_input(key="vis_c_steps").set_value(10).run()
    assert "vis_job" not in again.session_state and len(again.get("image")) == pictures
    assert any(k[0] == "class" for k in again.session_state["vis_results"])


def test_one_filter_by_its_index(digits_run):
    at = open_view(page_with_run(digits_run), "Filters")
    at.radio(key="vis_f_which").set_value("One filter").run()
    index = next(n for n in at.number_input if n.key.startswith("vis_f_index_run:") and n.key.endswith("_conv2d_1"))
    index.set_value(3).run()
    at.number_input(key="vis_f_steps").set_value(5).run()
    at.button(key="vis_run_filters").click().run()
    wait_for_job(at)
    keys = [k for k in at.session_state["vis_results"] if k[0] == "filters"]
    assert keys and keys[-1][3] == (3,)
    result = at.session_state["vis_results"][keys[-1]]["value"]
    assert len(result) == 1 and result[0].shape == (28, 28, 1)


def test_an_uploaded_keras_file_is_kept_for_the_jobs_and_one_that_would_run_code_is_refused(digits_run):
    from cvcore import saving

    at = open_page(vis_model_source="Upload .keras")
    at.file_uploader(key="vis_model_file").set_value(
        ("tiny.keras", saving.model_to_bytes(digits_run["model"]), "application/octet-stream")).run()
    assert_clean(at)
    assert metrics(at)["Input"] == "28 x 28 x 1"
    kept = list(workspace_of(at).path.glob("files/uploaded_model-*/model.keras"))
    assert len(kept) == 1, "the upload is not kept in the workspace, where the jobs read it"
    # A job on the uploaded model: the worker opens the file kept in the workspace.
    at = open_view(at, "Filters")
    at.number_input(key="vis_f_steps").set_value(5).run()
    at.button(key="vis_run_filters").click().run()
    wait_for_job(at)
    assert not errors(at)
    assert any(k[0] == "filters" and k[1].startswith("upload:") for k in at.session_state["vis_results"])
    assert at.get("image"), "no pictures of filters"

    inputs = keras.Input((4,))
    bad = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    at.file_uploader(key="vis_model_file").set_value(
        ("bad.keras", saving.model_to_bytes(bad), "application/octet-stream")).run()
    assert_clean(at)
    assert "code" in errors(at).lower() or "safe" in errors(at).lower(), errors(at)
    assert not list(workspace_of(at).path.glob("files/uploaded_model-*/model.keras")), \
        "a refused upload (or the one it replaced) was left in the workspace"


def test_a_job_whose_model_file_is_gone_says_why_it_failed(digits_run):
    """The page still holds the uploaded model in memory, but the job (another process) can only read the
    file, which is gone from the workspace: the job fails, and the page says so in plain words."""
    import shutil

    from cvcore import saving

    at = open_page(vis_model_source="Upload .keras")
    at.file_uploader(key="vis_model_file").set_value(
        ("tiny.keras", saving.model_to_bytes(digits_run["model"]), "application/octet-stream")).run()
    assert_clean(at)
    (kept,) = workspace_of(at).path.glob("files/uploaded_model-*/model.keras")
    shutil.rmtree(kept.parent)
    at = open_view(at, "Classes")
    at.number_input(key="vis_c_steps").set_value(5).run()
    at.button(key="vis_run_class").click().run()
    assert_clean(at)
    from cvcore import jobs

    client = jobs.default_manager()
    # The job may fail so fast that the click's own run already saw it end: then ask the queue for it.
    job_id = (at.session_state["vis_job"]["id"] if "vis_job" in at.session_state
              else client.jobs(workspace_of(at).id)[-1].id)
    wait_for_job(at)
    assert client.get(job_id).status == "failed"
    message = errors(at)
    assert "failed:" in message and "no longer in your workspace" in message, message
    assert not any(k[0] == "class" for k in at.session_state.get("vis_results", {}))
    assert at.button(key="vis_run_class").disabled is False  # the next job can be started


def test_a_colour_photo_on_a_digits_model(digits_run):
    at = page_with_run(digits_run)
    at.segmented_control(key="vis_image_kind").set_value("Another image").run()
    assert_clean(at)
    at = open_view(at, "Saliency & Grad-CAM")
    assert not errors(at)
    at = compute_smoothgrad(at)  # the job reads the photo the page saved into the workspace
    np.testing.assert_equal(len(at.get("plotly_chart")) >= 5, True)


def save_like_keras_applications(model) -> bytes:
    """A model's weights as the bytes of a file in the legacy HDF5 layout of Keras' published ImageNet files."""
    import io

    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return buf.getvalue()


@pytest.mark.slow
def test_a_class_by_gradient_ascent_shows_its_progress_and_stops_on_stop():
    """MobileNetV2 with a weights file uploaded (kept in the workspace for the job), 500 steps of class
    ascent: long enough to be caught mid-way, stopped, and kept as it was then."""
    from cvcore import applications

    weights = save_like_keras_applications(applications.load_application("mobilenetv2", weights=None))
    at = open_page(vis_app="mobilenetv2", vis_weights="Upload a weights file")
    at.file_uploader(key="vis_weights_file").set_value(
        ("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", weights, "application/octet-stream")).run()
    assert_clean(at)
    at = open_view(at, "Classes")
    assert metrics(at)["Input"] == "224 x 224 x 3"
    assert len(list(workspace_of(at).path.glob("files/uploaded_weights-*/weights.h5"))) == 1
    at.number_input(key="vis_c_steps").set_value(500).run()
    at.button(key="vis_run_class").click().run()
    assert_clean(at)
    label = at.session_state["vis_job"]["label"]
    assert label == "class Irish terrier"
    # A snapshot does not update itself: ask the client again each time.
    wait_until(lambda: (job_now(at).progress or {}).get("done", 0) >= 5, timeout=180,
               what="the first steps of the class ascent in the job's progress", details=lambda: f"job {job_now(at)}")
    rerun_until(at, lambda at: f"{label}: " in progress_bar(at)[1] and " of 500 steps" in progress_bar(at)[1],
                timeout=30, what="the progress bar showing the steps of 500")
    assert 0 < progress_bar(at)[0] < 100
    assert job_now(at).active and at.button(key="vis_run_class").disabled  # one job at a time
    at.button(key="vis_stop").click().run()
    assert_clean(at)
    job_id = at.session_state["vis_job"]["id"]
    from cvcore import jobs

    client = jobs.default_manager()
    assert client.get(job_id).stop_requested
    wait_until(lambda: not client.get(job_id).active, timeout=60, what="the class ascent ending after Stop",
               details=lambda: f"job {client.get(job_id)}")
    ended = client.get(job_id)
    assert ended.status == "stopped", (ended.status, ended.error)
    assert ended.result["saved"] and ended.result["stopped"] and 5 <= ended.result["done"] < 500, ended.result
    wait_for_job(at)
    assert not errors(at)
    assert any("Stopped early" in c.value for c in at.caption), [c.value for c in at.caption]
    key = next(k for k in at.session_state["vis_results"] if k[0] == "class")
    assert at.session_state["vis_results"][key]["stopped"] and at.session_state["vis_results"][key]["value"].shape == (224, 224, 3)
    assert at.get("image"), "the picture as it was when stopped"


def block_the_queue(client, token: str) -> list:
    """Fill every running slot of the job queue with other owners' jobs (they stop when asked)."""
    slots = client.status().get("queue", {}).get("max_running", client.settings.max_running)
    blockers = [client.submit(f"blocker-{i}-{token}", "cvcore.job_probes:count", {"steps": 3000, "delay": 0.1},
                              name="blocker", kind="probe") for i in range(slots)]
    wait_until(lambda: all(client.get(b.id).status == "running" for b in blockers), timeout=180,
               what="the blocking jobs running", details=lambda: [client.get(b.id) for b in blockers])
    return blockers


def test_a_reload_follows_the_workspaces_picture_job_and_can_stop_it(digits_run):
    """The job belongs to the workspace, not to the tab: a reload (the workspace link opened again) shows the
    class ascent waiting in the queue, with its Stop. (Queued behind other owners' jobs, so that it is
    surely still there when the reload comes.)"""
    from cvcore import jobs

    client = jobs.default_manager()
    at = open_view(page_with_run(digits_run), "Classes")
    blockers = block_the_queue(client, at.query_params["ws"])
    try:
        at.button(key="vis_run_class").click().run()
        job_id = at.session_state["vis_job"]["id"]
        assert client.get(job_id).status == "queued"
        again = open_view(open_page(at.query_params["ws"]), "Classes")
        assert again.session_state["vis_job"]["id"] == job_id
        assert any("Queued behind other users' work: position 1" in i.value for i in again.info)
        assert again.button(key="vis_run_class").disabled  # one job at a time, whichever tab started it
        again.button(key="vis_stop_queued").click().run()
        wait_for_job(again)
        assert client.get(job_id).status == "stopped" and not errors(again)
    finally:
        for blocker in blockers:
            client.stop(blocker.id)


def test_scorecam_stopped_in_the_queue_leaves_nothing_then_runs_to_the_end(digits_run):
    """Score-CAM waits behind other users' jobs (the queue's position and its Stop), is stopped there
    (nothing to show, said so), then, started again with the queue free, runs to its map."""
    from cvcore import jobs

    client = jobs.default_manager()
    at = open_view(page_with_run(digits_run), "Saliency & Grad-CAM")
    at.segmented_control(key="vis_cam_method").set_value("scorecam").run()
    charts = len(at.get("plotly_chart"))
    blockers = block_the_queue(client, at.query_params["ws"])
    try:
        at.button(key="vis_run_scorecam").click().run()
        assert_clean(at)
        job_id = at.session_state["vis_job"]["id"]
        assert client.get(job_id).status == "queued"
        assert any("Queued behind other users' work: position 1" in i.value for i in at.info), [i.value for i in at.info]
        assert at.button(key="vis_run_scorecam").disabled
        at.button(key="vis_stop_queued").click().run()
        assert_clean(at)
        wait_until(lambda: not client.get(job_id).active, timeout=30, what="the queued Score-CAM leaving the queue")
        assert client.get(job_id).status == "stopped" and client.get(job_id).started is None
        if "vis_job" in at.session_state:  # else the page already said so, in the run after Stop: no rerun
            wait_for_job(at)
        note = " ".join(i.value for i in at.info)
        assert "Score-CAM was stopped before it started: nothing to show" in note, note
        assert "go on from there" not in note  # a stopped Score-CAM promises no resume
        assert not any(k[0] == "cam" and k[4] == "scorecam" for k in at.session_state.get("vis_results", {}))
        assert not image_folders(at)
    finally:
        for b in blockers:
            client.stop(b.id)
    wait_until(lambda: not any(client.get(b.id).active for b in blockers), timeout=60, what="the blockers ending")
    at.button(key="vis_run_scorecam").click().run()
    assert_clean(at)
    wait_for_job(at)
    assert not errors(at)
    assert any(k[0] == "cam" and k[4] == "scorecam" for k in at.session_state["vis_results"])
    assert len(at.get("plotly_chart")) == charts + 1  # the Score-CAM map


def test_vgg16_without_imagenet_weights_says_so_and_offers_random_weights():
    at = open_page()
    assert at.session_state["vis_model_source"] == "ImageNet model"
    warning = at.warning[0].value
    assert "ImageNet weights for VGG16 could not be had" in warning and "CVCORE_WEIGHTS_DIR" in warning
    at.button(key="vis_use_random").click().run()
    assert_clean(at)
    assert metrics(at)["Input"] == "224 x 224 x 3" and metrics(at)["Parameters"] == "138,357,544"
    assert metrics(at)["Classes"] == "1,000"

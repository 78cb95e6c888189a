"""AppTest tests of the Visualize page: a model trained here, VGG16 without its ImageNet weights, uploads,
Score-CAM's progress bar and Stop."""
import threading

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from apptest_helpers import assert_clean, errors, metrics, rerun_until, wait_for_job_end

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
    assert len(at.get("plotly_chart")) >= 5  # image, top-5, CAM, saliency, SmoothGrad
    at.segmented_control(key="vis_cam_method").set_value("gradcam++").run()
    assert_clean(at)
    at.segmented_control(key="vis_cam_method").set_value("scorecam").run()
    at.button(key="vis_run_scorecam").click().run()
    wait_for_job(at)
    assert not errors(at)
    assert any(k[0] == "cam" and k[4] == "scorecam" for k in at.session_state["vis_results"])


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


def test_vgg16_without_imagenet_weights_says_so_and_offers_random_weights():
    at = open_page()
    assert at.session_state["vis_model_source"] == "ImageNet model"
    warning = at.warning[0].value
    assert "ImageNet weights for VGG16 could not be had" in warning and "CVCORE_WEIGHTS_DIR" in warning
    at.button(key="vis_use_random").click().run()
    assert_clean(at)
    assert metrics(at)["Input"] == "224 x 224 x 3" and metrics(at)["Parameters"] == "138,357,544"
    assert metrics(at)["Classes"] == "1,000"


def test_an_uploaded_keras_file_and_one_that_would_run_code(digits_run):
    from cvcore import saving

    at = open_page(vis_model_source="Upload .keras")
    at.file_uploader(key="vis_model_file").set_value(
        ("tiny.keras", saving.model_to_bytes(digits_run["model"]), "application/octet-stream")).run()
    assert_clean(at)
    assert metrics(at)["Input"] == "28 x 28 x 1"
    inputs = keras.Input((4,))
    bad = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    at.file_uploader(key="vis_model_file").set_value(
        ("bad.keras", saving.model_to_bytes(bad), "application/octet-stream")).run()
    assert_clean(at)
    assert "code" in errors(at).lower() or "safe" in errors(at).lower(), errors(at)


def test_a_colour_photo_on_a_digits_model(digits_run):
    at = page_with_run(digits_run)
    at.segmented_control(key="vis_image_kind").set_value("Another image").run()
    assert_clean(at)
    at = open_view(at, "Saliency & Grad-CAM")
    assert not errors(at)
    np.testing.assert_equal(len(at.get("plotly_chart")) >= 5, True)


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


def test_scorecam_shows_its_progress_and_stops_on_stop(digits_run, monkeypatch):
    """Score-CAM's batches run only when the test lets them (a gate), so the bar is caught mid-way."""
    from cvcore import jobs
    from cvcore.visualize import cam as cam_module

    cam_module.clear_cache()  # no Score-CAM of this model and image from another test
    monkeypatch.setattr(cam_module, "_SCORECAM_BATCH", 2)  # the last convolution's 16 maps: 8 batches
    gate, batches = threading.Semaphore(0), []
    real_engine = cam_module._engine

    def gated_engine(model, layer_name, input_shape):
        engine = real_engine(model, layer_name, input_shape)
        if not getattr(engine, "gated", False):
            forward = engine.probabilities

            def probabilities(xs):
                assert gate.acquire(timeout=60), "the test never let this batch of masked images run"
                batches.append(len(xs))
                return forward(xs)

            engine.probabilities, engine.gated = probabilities, True
        return engine

    monkeypatch.setattr(cam_module, "_engine", gated_engine)
    try:
        at = open_view(page_with_run(digits_run), "Saliency & Grad-CAM")
        at.segmented_control(key="vis_cam_method").set_value("scorecam").run()
        at.button(key="vis_run_scorecam").click().run()
        assert_clean(at)
        job = jobs.default_manager().get(at.session_state["vis_job"]["id"])
        gate.release(3)  # three batches of two
        rerun_until(at, lambda at: "Score-CAM: 6 of 16 masked images" in progress_bar(at)[1], timeout=60,
                    what="the progress bar showing 'Score-CAM: 6 of 16 masked images' after three batches")
        assert progress_bar(at)[0] == 37  # 6 / 16 of the bar
        assert job.active and at.button(key="vis_run_scorecam").disabled  # one job at a time
        at.button(key="vis_stop").click().run()
        assert_clean(at)
        assert job.stop_requested
        gate.release(100)  # the batch under way ends, then Score-CAM stops
        assert job.wait(30), "Score-CAM did not end within 30 s of pressing Stop"
        assert job.status == "stopped" and job.result is None, (job.status, job.error)
        assert len(batches) < 8, "Score-CAM ran every batch in spite of Stop"
        wait_for_job(at)
        note = " ".join(i.value for i in at.info)
        assert f"Score-CAM stopped after {2 * len(batches)} of 16 masked images" in note, note
        assert "go on from there" in note
        assert not any(k[0] == "cam" and k[4] == "scorecam" for k in at.session_state.get("vis_results", {}))
        # started again, it goes on from where it stopped and shows the map
        done_before = len(batches)
        at.button(key="vis_run_scorecam").click().run()
        wait_for_job(at)
        assert len(batches) == 8, f"{len(batches) - done_before} batches ran again; {8 - done_before} were left"
        assert any(k[0] == "cam" and k[4] == "scorecam" for k in at.session_state["vis_results"])
        assert not errors(at)
    finally:
        gate.release(100)
        cam_module.clear_cache()  # no gated engine left for other tests

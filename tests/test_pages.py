"""Streamlit AppTest tests: every page runs, reacts to its inputs, and handles bad input."""
import io

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from apptest_helpers import assert_clean, metrics

from test_data import huge_png_header

APP = "../app.py"
FILTERS = "../pages/filters.py"
TIMEOUT = 90


@pytest.fixture(autouse=True)
def offline_mnist(monkeypatch):
    """MNIST's download fails, as it does here: tests never depend on one."""
    keras = pytest.importorskip("keras")

    def no_download():
        raise Exception("URL fetch failure on https://example/mnist.npz: None -- tests never download")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", no_download)
    monkeypatch.delenv("CVCORE_MNIST_DIR", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield


def run(path=FILTERS):
    at = AppTest.from_file(path, default_timeout=TIMEOUT).run()
    assert_clean(at)
    return at


def open_view(at, name):
    """Select an output tab; tabs are lazy, so only the open one renders."""
    at.session_state["flt_view"] = name
    at.run()
    assert_clean(at)
    return at


def png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------- app and navigation


def test_home_page_and_sidebar_device(monkeypatch):
    from cvcore import device

    # First visit: TensorFlow still loading in the background; the page does not wait for it.
    monkeypatch.setattr(device, "_info", None)
    started = []
    monkeypatch.setattr(device, "configure_async", lambda: started.append(1))
    at = run(APP)
    assert at.title[0].value == "ConvNet Explorer"
    assert "Detecting the device" in " ".join(c.value for c in at.sidebar.caption) and started
    # Once it has loaded, the badge names the device.
    monkeypatch.undo()
    info = device.configure()
    at.run()
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert info.label.split(" (")[0] in sidebar and f"TensorFlow {info.tensorflow}" in sidebar


def test_a_script_run_ends_without_a_full_garbage_collection(monkeypatch):
    """Streamlit collected garbage twice after every run (its own and Keras' clear_session's): 0.13 s or
    more each with TensorFlow loaded, so a page polling its job every second took most of a core."""
    import gc

    import keras

    from cvcore import device

    device.configure()
    at = run(APP).switch_page("pages/filters.py").run()  # the first run after TensorFlow freezes what is loaded
    assert_clean(at)
    collections, cleared = [], []
    real_collect, real_clear = gc.collect, keras.backend.clear_session
    monkeypatch.setattr(gc, "collect", lambda *a, **k: (collections.append(a), real_collect(*a, **k))[1])
    monkeypatch.setattr(keras.backend, "clear_session",
                        lambda free_memory=True: (cleared.append(free_memory), real_clear(free_memory=free_memory))[1])
    at.run()
    assert_clean(at)
    assert collections == []
    assert cleared and not any(cleared)  # Keras' global state is still reset after each run, as Streamlit does
    assert gc.get_freeze_count() > 100_000  # TensorFlow's objects sit in the permanent generation


def test_navigation_reaches_the_filters_page():
    at = run(APP)
    at.switch_page("pages/filters.py").run()
    assert_clean(at)
    assert at.title[0].value == "Filters & convolution"


# ----------------------------------------------------------------------------- filters page


def test_filters_defaults_and_offline_notice():
    at = run()
    warning = " ".join(w.value for w in at.warning)
    assert "could not be downloaded" in warning and "digits" in warning
    m = metrics(at)
    assert m["Input"] == "28 x 28 x 1" and m["Conv2D"] == "26 x 26 x 2"
    assert m["Parameters"] == "20"  # (3*3*1 + 1) * 2
    assert any("26" in lx.value for lx in at.latex)


def test_padding_and_stride_change_the_shape_shown():
    at = run()
    at.radio(key="flt_padding").set_value("same").run()
    assert metrics(at)["Conv2D"] == "28 x 28 x 2"
    at.number_input(key="flt_sy").set_value(2).run()
    at.number_input(key="flt_sx").set_value(3).run()
    assert_clean(at)
    assert metrics(at)["Conv2D"] == "14 x 10 x 2"
    formulas = " ".join(lx.value for lx in at.latex)
    assert r"\frac{28}{2}" in formulas and r"\frac{28}{3}" in formulas


def test_relu_and_pooling_show_each_stage():
    at = run()
    at.toggle(key="flt_relu").set_value(True).run()
    at.selectbox(key="flt_pool").set_value("avg").run()
    at.number_input(key="flt_pool_size").set_value(3).run()
    assert_clean(at)
    m = metrics(at)
    assert m["ReLU"] == "26 x 26 x 2" and m["AveragePooling2D"] == "8 x 8 x 2"
    assert not at.code  # lazy tabs: the code view has not run yet
    code = open_view(at, "Keras code").code[0].value
    assert "AveragePooling2D(pool_size=(3, 3)" in code and 'activation="relu"' in code


def test_kernel_sizes_and_more_filters():
    at = run()
    at.selectbox(key="flt_size").set_value("3 x 4").run()
    at.number_input(key="flt_n").set_value(5).run()
    assert_clean(at)
    assert metrics(at)["Conv2D"] == "26 x 25 x 5"
    assert metrics(at)["Parameters"] == str((3 * 4 + 1) * 5)
    at.selectbox(key="flt_size").set_value("custom").run()
    at.number_input(key="flt_kh").set_value(7).run()
    assert metrics(at)["Conv2D"] == "22 x 26 x 5"


def captions(at):
    """The captions of the page's pictures (st.image), in order."""
    return [img.caption for element in at.get("image") for img in element.proto.imgs]


def test_a_preset_fills_the_weights():
    at = run()
    at.selectbox(key="flt_preset_0").set_value("sobel x").run()
    assert_clean(at)
    assert at.text_area(key="flt_weights_0_all_3x3").value.split() == ["-1", "0", "1", "-2", "0", "2", "-1", "0", "1"]
    at.selectbox(key="flt_preset_0").set_value("box blur").run()
    assert at.text_area(key="flt_weights_0_all_3x3").value.splitlines()[0].split() == ["1/9"] * 3


def test_a_weight_that_is_not_a_number_gets_a_clear_message_and_nothing_is_lost():
    at = run()
    at.toggle(key="flt_relu").set_value(True).run()
    open_view(at, "Step through one pixel")
    shown = metrics(at)
    at.text_area(key="flt_weights_0_all_3x3").input("-1 2 -1\n-1 2 abc\n-1 2 -1").run()
    assert_clean(at)
    errors = " ".join(e.value for e in at.error)
    assert "Filter 1" in errors and "row 2, column 3 is 'abc'" in errors
    assert "last weights that worked" in " ".join(w.value for w in at.warning)
    # Nothing lost: the text stays to be fixed, and every setting, even those below the weights, is kept.
    assert "abc" in at.text_area(key="flt_weights_0_all_3x3").value
    assert at.selectbox(key="flt_preset_0").value == "vertical line"
    assert at.toggle(key="flt_relu").value and at.session_state["flt_view"] == "Step through one pixel"
    assert metrics(at) == shown  # the outputs of the last weights that worked
    at.text_area(key="flt_weights_0_all_3x3").input("-1 2 -1\n-1 2 1/2\n-1 2 -1").run()
    assert_clean(at)
    assert not at.error and metrics(at)["Conv2D"] == "26 x 26 x 2"
    assert "last weights that worked" not in " ".join(w.value for w in at.warning)


def test_weights_of_the_wrong_size_say_so():
    at = run()
    at.text_area(key="flt_weights_1_all_3x3").input("1 0\n0 1").run()
    assert_clean(at)
    errors = " ".join(e.value for e in at.error)
    assert "Filter 2" in errors and "2 x 2 but the kernel size is 3 x 3" in errors


def test_an_edited_weight_changes_the_step_through():
    at = run()
    at.segmented_control(key="flt_source").set_value("Photo").run()  # ink under every pixel
    at.selectbox(key="flt_preset_0").set_value("identity").run()
    open_view(at, "Step through one pixel")
    before = [lx.value for lx in at.latex if "bias" in lx.value]
    at.text_area(key="flt_weights_0_all_3x3").input("0 0 0\n0 3 0\n0 0 0").run()  # centre weight 1 -> 3
    after = [lx.value for lx in at.latex if "bias" in lx.value]
    assert before and after and before != after


def test_feature_maps_are_pictures_until_hover_is_asked_for():
    """The first view draws no chart (the browser loads no chart library): pictures of the input, the
    kernels and the maps; "Hover values" draws the maps as the interactive chart."""
    at = run()
    assert not at.get("plotly_chart")
    shown = captions(at)
    assert shown[0].endswith(": 28 x 28 x 1")
    assert [c.split("  (")[0] for c in shown if c.startswith("Filter")] == ["Filter 1: Conv2D", "Filter 2: Conv2D"]
    kernels_shown = [img.alt for element in at.get("image") for img in element.proto.imgs if "weights" in img.alt]
    assert kernels_shown == ["Filter 1's weights as a picture", "Filter 2's weights as a picture"]
    at.toggle(key="flt_maps_hover").set_value(True).run()
    assert_clean(at)
    assert [c.key for c in at.get("plotly_chart")] == ["flt_maps"]
    assert not [c for c in captions(at) if c.startswith("Filter")]


def test_colour_photo_spans_channels():
    at = run()
    at.segmented_control(key="flt_source").set_value("Photo").run()
    assert_clean(at)
    m = metrics(at)
    assert m["Input"].endswith("x 3") and m["Parameters"] == str((3 * 3 * 3 + 1) * 2)
    assert any(t.label == "Per-channel view" for t in at.tabs)
    open_view(at, "Per-channel view")
    assert len(at.get("plotly_chart")) == 4  # R, G, B shares and their sum
    at.toggle(key="flt_per_channel").set_value(True).run()
    assert_clean(at)
    assert len(at.text_area) == 6  # R, G, B weights for each of 2 filters
    at.radio(key="flt_colour").set_value("Grayscale (1 channel)").run()
    assert metrics(at)["Input"].endswith("x 1")


def test_fashion_mnist_or_digits_by_class():
    at = run()
    at.selectbox(key="flt_dataset").set_value("digits").run()
    at.selectbox(key="flt_class").set_value(7).run()
    assert_clean(at)
    assert not at.warning
    assert captions(at)[0].startswith("scikit-learn digits, 7 #0")


def test_upload_a_valid_image():
    at = run()
    at.segmented_control(key="flt_source").set_value("Upload").run()
    assert any("Upload an image" in i.value for i in at.info)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    at.file_uploader(key="flt_upload").set_value(("cat.png", png(rgb), "image/png")).run()
    assert_clean(at)
    assert metrics(at)["Input"] == "40 x 30 x 3"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.png", b"this is not a picture", "not an image"),
        ("cut.png", png(np.zeros((64, 64, 3), np.uint8) + 7)[:60], "truncated or damaged"),
        ("bomb.png", huge_png_header(30_000, 30_000), "pixels"),
    ],
)
def test_bad_uploads_get_a_message_not_a_traceback(name, content, message):
    at = run()
    at.segmented_control(key="flt_source").set_value("Upload").run()
    at.file_uploader(key="flt_upload").set_value((name, content, "image/png")).run()
    assert_clean(at)
    assert message in " ".join(e.value for e in at.error)


def test_drawing_source_waits_for_a_drawing():
    at = run()
    at.segmented_control(key="flt_source").set_value("Draw").run()
    assert_clean(at)
    assert any("Draw a digit" in i.value for i in at.info)


@pytest.mark.parametrize("view", ["Feature-map cube", "Step through one pixel", "Keras code"])
def test_every_output_view_renders(view):
    at = run()
    at.toggle(key="flt_relu").set_value(True).run()
    at.selectbox(key="flt_pool").set_value("max").run()
    open_view(at, view)
    charts = len(at.get("plotly_chart"))
    assert charts == {"Feature-map cube": 1, "Step through one pixel": 1 + 3, "Keras code": 0}[view]

"""AppTest tests of the Augmentation page: both engines, N, the seed, bad values, bad uploads, recipes in and out."""
import io
import json

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from apptest_helpers import assert_clean, errors

from cvcore.augment import DEFAULT_RECIPES

PAGE = "../pages/augment.py"
TIMEOUT = 90


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_resource.clear()
    st.cache_data.clear()
    yield


def run():
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert_clean(at)
    return at


def images(at):
    return at.get("image")


def png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def code(at):
    return at.code[0].value


def test_keras_engine_by_default():
    at = run()
    assert at.title[0].value == "Augmentation"
    assert len(images(at)) == 1 + 8  # the original and N = 8 versions
    assert not at.error
    text = code(at)
    assert "layers.RandomRotation(40 / 360" in text and "layers.Rescaling(1 / 255" in text
    assert "seed=" not in text  # no seeds unless asked for
    assert at.slider(key="aug_k_rotation_range").value == 40


def test_imgaug_engine():
    at = run()
    at.segmented_control(key="aug_engine").set_value("imgaug").run()
    assert_clean(at)
    assert len(images(at)) == 1 + 8 and not at.error
    assert "iaa.Sequential([" in code(at) and "import_imgaug" in code(at)
    at.toggle(key="aug_i_affine_enabled").set_value(False).run()
    assert_clean(at)
    assert "# iaa.Affine(" in code(at)


def test_changing_n_changes_the_number_of_images():
    at = run()
    at.slider(key="aug_n").set_value(20).run()
    assert_clean(at)
    assert len(images(at)) == 1 + 20


def urls(at):
    return [img.proto.imgs[0].url for img in images(at)[1:]]


def test_new_seed_draws_other_versions_and_the_seed_repeats_them():
    at = run()
    first = urls(at)
    at.button(key="aug_new_seed").click().run()
    assert_clean(at)
    seed = at.session_state["aug_random_seed"]
    assert seed != 0 and urls(at) != first
    at.number_input(key="aug_random_seed").set_value(0).run()
    assert urls(at) == first  # the same seed, the same versions
    at.toggle(key="aug_code_seeded").set_value(True).run()
    assert "seed=" in code(at)  # one seed per layer, derived from the page's


@pytest.mark.parametrize("key, value, message", [
    ("aug_k_rescale", "abc", "`rescale` is 'abc'"),
    ("aug_k_rescale", "0", "`rescale` (1/255 for pixels in [0, 1], or null for none) must be a number greater than 0"),
    ("aug_k_cval", 1e9, "`cval`"),
])
def test_a_bad_value_shows_an_error_not_a_traceback(key, value, message):
    at = run()
    if key == "aug_k_rescale":
        at.text_input(key=key).set_value(value).run()
    else:
        at.selectbox(key="aug_k_fill_mode").set_value("constant").run()
        at.number_input(key=key).set_value(value).run()
    assert_clean(at)
    assert message in errors(at)
    assert not images(at)[1:]


def test_upload_of_a_non_image_shows_an_error():
    at = run()
    at.segmented_control(key="aug_source").set_value("Upload").run()
    at.file_uploader(key="aug_upload").set_value(("notes.png", b"this is not a picture", "image/png")).run()
    assert_clean(at)
    assert "not an image" in errors(at)


def test_upload_of_an_image_is_augmented_at_the_working_size():
    at = run()
    at.segmented_control(key="aug_source").set_value("Upload").run()
    rgb = np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    at.file_uploader(key="aug_upload").set_value(("leaf.png", png(rgb), "image/png")).run()
    assert_clean(at)
    assert len(images(at)) == 9
    assert "150 x 100" in images(at)[0].proto.imgs[0].caption


def test_recipe_json_loads_back():
    at = run()
    recipe = {**DEFAULT_RECIPES["imgaug"], "crop": {"enabled": False, "percent": 0.2}, "random_order": False}
    at.file_uploader(key="aug_recipe_upload").set_value(("r.json", json.dumps(recipe).encode(), "application/json"))
    at.run()
    assert_clean(at)
    assert at.session_state["aug_engine"] == "imgaug" and at.session_state["aug_i_crop_percent"] == 0.2
    assert "# iaa.Crop(percent=(0.0, 0.2))" in code(at) and "random_order=False" in code(at)


@pytest.mark.parametrize("content, message", [
    (b"{not json", "not a JSON recipe"),
    (json.dumps({"engine": "keras", "rotation_range": 400}).encode(), "`rotation_range`"),
])
def test_a_bad_recipe_file_says_why(content, message):
    at = run()
    at.file_uploader(key="aug_recipe_upload").set_value(("bad.json", content, "application/json")).run()
    assert_clean(at)
    assert message in errors(at)
    assert at.slider(key="aug_k_rotation_range").value == 40  # the widgets are left as they were


def test_edits_survive_switching_engines_and_reset_restores_the_chapters_recipe():
    at = run()
    at.slider(key="aug_k_rotation_range").set_value(10.0).run()
    at.segmented_control(key="aug_engine").set_value("imgaug").run()
    at.segmented_control(key="aug_engine").set_value("keras").run()
    assert_clean(at)
    assert at.slider(key="aug_k_rotation_range").value == 10
    assert "layers.RandomRotation(10 / 360" in code(at)
    at.button(key="aug_reset").click().run()
    assert at.slider(key="aug_k_rotation_range").value == 40

"""AppTest tests of the Data page: demo folders, zip uploads good and bad, the split, server folders."""
import io
import zipfile

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from apptest_helpers import assert_clean, metrics, rerun_until, workspace_of

from cvcore import samples
from test_data import huge_png_header
from test_folders import make_zip

TIMEOUT = 120


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    """Each test has its own app state and upload folders; caches start empty."""
    monkeypatch.setenv("CVCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CVCORE_DATA_DIRS", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def open_data_page(token=None):
    """The Data page in a new browser session; in the workspace of ``token`` (its link) when given."""
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    if token is not None:
        at.query_params["ws"] = token
    at.run()
    at.switch_page("pages/data.py").run()
    assert_clean(at)
    return at


def png(size=(20, 16), colour=(10, 120, 30)):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def seedlings_zip(tmp_path, per_class=4):
    root = samples.write_seedlings_folder(tmp_path / "zipsrc" / "my-plants", per_class=per_class, size=40)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(root.rglob("*.png")):
            zf.write(path, path.relative_to(root.parent).as_posix())
        zf.writestr("my-plants/grass/notes.jpg", "a text file named .jpg")
    return buf.getvalue()


def upload(at, name, raw):
    at.segmented_control(key="data_source").set_value("Upload a zip").run()
    at.file_uploader(key="data_zip").set_value((name, raw, "application/zip")).run()
    return at


def test_the_demo_loads_and_becomes_the_session_data_set():
    at = open_data_page()
    assert metrics(at) == {"Classes": "10", "Images": "600", "Could not be read": "0",
                           "Scan time": metrics(at)["Scan time"]}
    ds = at.session_state["cvx_dataset"]
    assert len(ds) == 600 and int(ds.validation.sum()) == 120
    assert "480 training and 120 validation" in at.success[0].value


def test_the_split_is_saved_in_the_workspace_and_is_no_one_elses():
    at = open_data_page()
    at.selectbox(key="data_demo").select("seedlings").run()
    at.radio(key="data_split_kind").set_value("Images per class").run()
    at.number_input(key="data_per_class").set_value(12).run()
    at.number_input(key="data_seed").set_value(5).run()
    assert_clean(at)
    first = at.session_state["cvx_dataset"]
    assert first.counts == {"grass": (28, 12), "round-leaf": (28, 12), "rosette": (28, 12)}

    later = open_data_page(at.session_state["cvx_ws_token"])  # a reload, or a bookmark of the workspace link
    later.selectbox(key="data_demo").select("seedlings").run()
    assert later.radio(key="data_split_kind").value == "Images per class"
    assert later.number_input(key="data_per_class").value == 12 and later.number_input(key="data_seed").value == 5
    np.testing.assert_array_equal(later.session_state["cvx_dataset"].validation, first.validation)

    # Another user of the same shared demo folder keeps the default split: one student's split never
    # changes another's validation data.
    other = open_data_page()
    other.selectbox(key="data_demo").select("seedlings").run()
    assert other.radio(key="data_split_kind").value == "Fraction" and other.number_input(key="data_seed").value == 0
    assert other.session_state["cvx_dataset"].counts == {"grass": (32, 8), "round-leaf": (32, 8), "rosette": (32, 8)}


def test_the_data_set_comes_back_after_a_reload():
    at = open_data_page()
    at.selectbox(key="data_demo").select("seedlings").run()
    at.number_input(key="data_seed").set_value(3).run()
    chosen = at.session_state["cvx_dataset"]
    st.cache_resource.clear()  # as after a server restart
    again = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    again.query_params["ws"] = at.session_state["cvx_ws_token"]
    again.run()
    again.switch_page("pages/background.py").run()  # a page that uses the data set, visited first
    assert_clean(again)
    back = again.session_state["cvx_dataset"]
    assert back.name == chosen.name and back.split == chosen.split
    np.testing.assert_array_equal(back.validation, chosen.validation)


def test_a_zip_upload_becomes_a_data_set_with_its_bad_files_listed(tmp_path):
    at = upload(open_data_page(), "my-plants.zip", seedlings_zip(tmp_path))
    assert_clean(at)
    assert metrics(at)["Classes"] == "3" and metrics(at)["Images"] == "12" and metrics(at)["Could not be read"] == "1"
    ds = at.session_state["cvx_dataset"]
    assert ds.name == "my-plants" and ds.source == "upload"
    workspace = workspace_of(at).path
    assert workspace in ds.root.parents  # extracted into this workspace's private folder
    at.session_state["data_tabs"] = "Could not be read (1)"  # lazy tabs: open this one
    at.run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert table["file"].tolist() == ["grass/notes.jpg"] and "not an image" in table.iloc[0, 1]


def test_a_new_upload_replaces_the_previous_one(tmp_path):
    at = upload(open_data_page(), "first.zip", seedlings_zip(tmp_path))
    first_root = at.session_state["cvx_dataset"].root
    at.file_uploader(key="data_zip").set_value(
        ("second.zip", make_zip({"a/1.png": png(), "b/2.png": png()}), "application/zip")).run()
    assert_clean(at)
    assert metrics(at)["Classes"] == "2" and not first_root.exists()


@pytest.mark.parametrize("raw, message", [
    (make_zip({"cats/1.png": png(), "../escape.png": png()}), "climbs out"),
    (make_zip({"cats/1.png": png()}, symlinks=["cats/link.png"]), "symbolic link"),
    (b"not a zip at all", "not a zip"),
    (make_zip({"readme.txt": b"no folders"}), "no class folders"),
])
def test_bad_archives_get_a_message_and_leave_nothing(tmp_path, raw, message):
    at = upload(open_data_page(), "bad.zip", raw)
    assert_clean(at)
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert "cvx_dataset" not in at.session_state or at.session_state["cvx_dataset"].source != "upload"
    assert not (tmp_path / "escape.png").exists()


def test_a_zip_bomb_image_is_skipped_with_its_reason():
    raw = make_zip({"a/ok.png": png(), "a/bomb.png": huge_png_header(50_000, 50_000), "b/ok.png": png()})
    at = upload(open_data_page(), "bomb.zip", raw)
    assert_clean(at)
    assert metrics(at)["Images"] == "2" and metrics(at)["Could not be read"] == "1"
    assert "bomb.png" in at.session_state["cvx_dataset"].unreadable[0][0]


def test_server_folders_are_offered_only_when_configured(tmp_path, monkeypatch):
    at = open_data_page()
    at.segmented_control(key="data_source").set_value("Server folder").run()
    assert_clean(at)
    assert "CVCORE_DATA_DIRS" in at.info[0].value
    samples.write_seedlings_folder(tmp_path / "srv" / "plants" / "train", per_class=3, size=32)
    monkeypatch.setenv("CVCORE_DATA_DIRS", str(tmp_path / "srv" / "plants"))
    at = open_data_page()
    at.segmented_control(key="data_source").set_value("Server folder").run()
    assert_clean(at)
    assert at.selectbox(key="data_server").options == ["plants/train"]
    assert metrics(at)["Images"] == "9"
    assert not list((tmp_path / "srv").rglob("*.json"))  # nothing written into the server's folder


def test_cleaned_images_become_the_data_set_with_the_same_split():
    at = open_data_page()
    at.selectbox(key="data_demo").select("seedlings").run()
    at.radio(key="data_split_kind").set_value("Images per class").run()
    at.number_input(key="data_per_class").set_value(4).run()
    original = at.session_state["cvx_dataset"]
    at.switch_page("pages/background.py").run()
    at.button(key="bg_folder_run").click().run()
    rerun_until(at, lambda at: "bg_folder_result" in at.session_state, timeout=60,
                what="the background removal's result")
    at.button(key="bg_use").click().run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    cleaned = at.session_state["cvx_dataset"]
    assert "is your data set" in at.success[-1].value
    assert cleaned.source == "derived" and cleaned.name == "Synthetic seedlings (background removed)"
    assert len(cleaned) == len(original) == 120
    assert [f.rsplit(".", 1)[0] for f in cleaned.files] == [f.rsplit(".", 1)[0] for f in original.files]
    np.testing.assert_array_equal(cleaned.validation, original.validation)
    img = cleaned.image(0)
    assert (img.sum(axis=2) == 0).mean() > 0.5  # soil painted black
    # The Data page keeps it until the user chooses another data set.
    at.switch_page("pages/data.py").run()
    assert_clean(at)
    assert "background removed" in at.info[0].value
    assert at.session_state["cvx_dataset"] is cleaned
    at.button(key="data_replace").click().run()
    assert_clean(at)
    assert at.session_state["cvx_dataset"].source == "demo"


def test_a_zip_over_the_workspace_quota_says_how_much_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("CVCORE_WORKSPACE_QUOTA_MB", "0.01")  # 10 KiB: the zip does not fit
    at = upload(open_data_page(), "my-plants.zip", seedlings_zip(tmp_path))
    assert_clean(at)
    message = " ".join(e.value for e in at.error)
    assert "Your workspace is full" in message and "of 10.2 KiB" in message and "Delete runs" in message
    assert "cvx_dataset" not in at.session_state or at.session_state["cvx_dataset"].source != "upload"

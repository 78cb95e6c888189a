"""AppTest tests of the Data page: demo folders, zip uploads good and bad, the split, server folders."""
import io
import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from apptest_helpers import assert_clean, metrics, rerun_until, wait_for_job_end, workspace_of

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


# ============================================================================ big folders: the scan is a job


def linked_folder(top, classes, *, side=8):
    """Class folders of PNGs, ``{class: (count, colour)}``: each class's files are hard links of one PNG
    (``side`` x ``side``), so a folder of a thousand images takes a few KiB (copies where links are refused)."""
    for cname, (count, colour) in classes.items():
        (top / cname).mkdir(parents=True)
        first = top / cname / "0000.png"
        Image.new("RGB", (side, side), colour).save(first)
        for i in range(1, count):
            try:
                os.link(first, top / cname / f"{i:04d}.png")
            except OSError:
                shutil.copyfile(first, top / cname / f"{i:04d}.png")
    return top


def progress_texts(at) -> str:
    return " ".join(str(p.proto.text) for p in at.get("progress"))


def warnings(at) -> str:
    return " ".join(w.value for w in at.warning)


def test_a_folder_of_more_than_1000_images_is_scanned_as_a_job(tmp_path, monkeypatch):
    from cvcore import jobs
    from cvcore.folders import count_image_files

    root = linked_folder(tmp_path / "srv" / "insects", {"ants": (600, (200, 30, 30)), "bees": (410, (230, 200, 20))})
    assert count_image_files(root) == 1010
    monkeypatch.setenv("CVCORE_DATA_DIRS", str(root))
    at = open_data_page()
    assert at.session_state["cvx_dataset"].source == "demo"  # a small folder: scanned in the page, as before
    assert "data_scan_job" not in at.session_state
    at.segmented_control(key="data_source").set_value("Server folder").run()
    assert_clean(at)
    assert at.selectbox(key="data_server").options == ["insects"]
    note = at.session_state["data_scan_job"]  # submitted to Ray, not scanned in the page's thread
    job = jobs.default_manager().get(note["id"])
    assert job.kind == "scan" and job.owner == workspace_of(at).id and note["root"] == str(root)
    assert "background job" in " ".join(c.value for c in at.caption)
    wait_for_job_end(at, "data_scan_job", timeout=120, what="the scan job of 1,010 images ending")
    assert jobs.default_manager().get(note["id"]).status == "done"
    rerun_until(at, lambda at: "Classes" in metrics(at), timeout=60, what="the page showing the job's scan")
    assert metrics(at)["Classes"] == "2" and metrics(at)["Images"] == "1,010" and metrics(at)["Could not be read"] == "0"
    ds = at.session_state["cvx_dataset"]
    assert ds.source == "server" and ds.classes == ["ants", "bees"] and len(ds) == 1010
    assert {c: sum(n) for c, n in ds.counts.items()} == {"ants": 600, "bees": 410}
    assert "808 training and 202 validation" in at.success[0].value
    assert "data_scan_job" not in at.session_state
    assert workspace_of(at).path in Path(note["out"]).parents  # the scan came back through the workspace
    assert not list(root.rglob("*.json"))  # nothing written into the server's folder
    # The page then goes on as for a small folder: the samples of each class.
    assert [m.value for m in at.markdown if m.value.startswith("**ants**")]


def test_stop_ends_a_big_scan_and_a_reload_follows_it(tmp_path, monkeypatch):
    from cvcore import jobs

    # 3000 x 3000 pixels each (a tenth of a second to check), hard links of one 33 KiB file.
    root = linked_folder(tmp_path / "srv" / "photos", {"big": (1005, (90, 120, 60))}, side=3000)
    monkeypatch.setenv("CVCORE_DATA_DIRS", str(root))
    at = open_data_page()
    at.segmented_control(key="data_source").set_value("Server folder").run()
    assert_clean(at)
    job_id = at.session_state["data_scan_job"]["id"]
    rerun_until(at, lambda at: re.search(r"Checking every file: [1-9][0-9,]* of 1,005 files", progress_texts(at)),
                timeout=90, what="the scan job's progress on the page")

    # A reload (the workspace link in a new session) follows the running scan; it does not start another.
    again = open_data_page(at.session_state["cvx_ws_token"])
    again.segmented_control(key="data_source").set_value("Server folder").run()
    assert_clean(again)
    assert again.session_state["data_scan_job"]["id"] == job_id
    assert jobs.default_manager().active_job(workspace_of(at).id).id == job_id
    assert next(b for b in again.button if b.key == "data_rescan").disabled  # not while it runs
    again.button(key="data_scan_stop").click().run()
    assert_clean(again)
    wait_for_job_end(again, "data_scan_job", timeout=60, what="the scan job ending after Stop")
    assert jobs.default_manager().get(job_id).status == "stopped"
    for page in (again, at):  # both tabs say so, and neither loads a half-checked folder
        rerun_until(page, lambda p: "The scan was stopped; nothing was loaded" in warnings(p), timeout=30,
                    what="the page saying the scan was stopped")
        assert "Classes" not in metrics(page) and page.session_state["cvx_dataset"].source == "demo"
        assert "data_scan_job" not in page.session_state
    assert not list((workspace_of(at).path / "scans").glob("*.json"))  # a stopped scan leaves nothing

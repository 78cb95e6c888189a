"""The Background removal page under Streamlit's AppTest: defaults, every method, bad input, the folder run."""
import os
import re
import shutil
from types import SimpleNamespace

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from apptest_helpers import assert_clean, errors, metrics, rerun_until, workspace_of

from cvcore import background as bg
from cvcore import jobs
from cvcore.samples import seedling_photo
from ui import datasets

PAGE = "../pages/background.py"
TIMEOUT = 60


@pytest.fixture(autouse=True)
def fresh_caches(tmp_path, monkeypatch):
    st.cache_data.clear()
    yield


def run(at=None):
    at = (AppTest.from_file(PAGE, default_timeout=TIMEOUT) if at is None else at).run()
    assert_clean(at)
    return at


CHAPTER_ROWS = [[71, 86, 38, 1600], [65, 79, 19, 1600], [95, 106, 56, 1600], [56, 63, 43, 500]]


def table(at):
    return at.data_editor[0].value.values.tolist()


def test_defaults_show_the_mask_and_the_iou_with_the_true_leaves():
    at = run()
    assert at.title[0].value == "Background removal"
    assert at.segmented_control(key="bg_method").value == "rgb"
    assert at.selectbox(key="bg_rgb_preset").value == bg.CHAPTER_PRESET == "The chapter's four greens"
    assert table(at) == CHAPTER_ROWS  # the chapter's greens and thresholds, in its units
    assert at.number_input(key="bg_median").value == 9  # and its median blur
    m = metrics(at)
    assert float(m["IoU with the true leaves"]) >= 0.9
    kept = float(m["Pixels kept"].rstrip("%"))
    assert 2 < kept < 20 and m["Image"] == "256 x 256"  # leaves, not a black image, not the soil
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(charts) == 3 and "Mask over the image" in charts[0] and "After" in charts[2]
    assert "585,000" in " ".join(c.value for c in at.caption)  # the units are explained
    assert "load one on the Data page" in " ".join(i.value for i in at.info)
    assert not at.error


def test_the_chapters_thresholds_typed_in_give_the_chapters_mask():
    at = run()
    before = metrics(at)["Pixels kept"]
    edit_table(at, "bg_rgb_table_v0", {i: {"threshold": t} for i, (*_, t) in enumerate(CHAPTER_ROWS)})
    assert_clean(at)
    assert not at.error and metrics(at)["Pixels kept"] == before
    edit_table(at, "bg_rgb_table_v0", {0: {"threshold": 500_000}})  # nearly every colour is within 500,000
    assert float(metrics(at)["Pixels kept"].rstrip("%")) > 90
    edit_table(at, "bg_rgb_table_v0", {0: {"threshold": 600_001}})
    assert "Target row 1, column threshold is 600001" in errors(at)


def test_a_preset_replaces_the_targets_and_the_median_blur():
    at = run()
    at.selectbox(key="bg_rgb_preset").set_value(bg.BRIGHT_PRESET).run()
    assert_clean(at)
    assert table(at) == [[*c, t] for c, t in bg.BRIGHT_TARGETS] and at.number_input(key="bg_median").value == 5
    assert not at.error and "Pixels kept" in metrics(at)
    at.segmented_control(key="bg_method").set_value("hsv").run()  # the preset's widget is not drawn ...
    at.segmented_control(key="bg_method").set_value("rgb").run()  # ... and comes back as it was, with its rows
    assert_clean(at)
    assert at.selectbox(key="bg_rgb_preset").value == bg.BRIGHT_PRESET and at.number_input(key="bg_median").value == 5
    assert table(at) == [[*c, t] for c, t in bg.BRIGHT_TARGETS]
    at.selectbox(key="bg_rgb_preset").set_value(bg.CHAPTER_PRESET).run()
    assert_clean(at)
    assert table(at) == CHAPTER_ROWS and at.number_input(key="bg_median").value == 9
    at.segmented_control(key="bg_method").set_value("cieluv").run()
    assert_clean(at)
    assert at.selectbox(key="bg_luv_preset").value == bg.CHAPTER_PRESET
    assert table(at) == [[*c, t] for c, t in bg.DEFAULT_LUV_TARGETS]
    assert float(metrics(at)["IoU with the true leaves"]) >= 0.9


@pytest.mark.parametrize("method", ["cieluv", "hsv", "grabcut"])
def test_every_method_renders(method):
    at = run()
    at.segmented_control(key="bg_method").set_value(method).run()
    assert_clean(at)
    assert not at.error
    assert float(metrics(at)["IoU with the true leaves"]) >= (0.6 if method == "grabcut" else 0.9)
    assert len(at.get("plotly_chart")) == 3


def test_other_leaf_shapes_and_a_photograph():
    at = run()
    at.selectbox(key="bg_kind").set_value("grass").run()
    assert_clean(at)
    assert float(metrics(at)["IoU with the true leaves"]) >= 0.85  # thin leaves, and the chapter's 9 x 9 blur
    at.segmented_control(key="bg_source").set_value("Photo").run()
    assert_clean(at)
    assert "IoU with the true leaves" not in metrics(at)  # no truth for a photograph
    assert metrics(at)["Image"].startswith("384") or metrics(at)["Image"].endswith("384")


def test_an_even_median_shows_an_error_and_keeps_the_settings():
    at = run()
    at.segmented_control(key="bg_method").set_value("hsv").run()
    at.slider(key="bg_hue").set_value((70, 150)).run()
    at.number_input(key="bg_median").set_value(4).run()
    assert_clean(at)
    assert "`median`" in errors(at) and "received 4" in errors(at)
    assert "Pixels kept" not in metrics(at)
    assert at.slider(key="bg_hue").value == (70, 150) and at.segmented_control(key="bg_method").value == "hsv"
    at.number_input(key="bg_median").set_value(7).run()
    assert_clean(at)
    assert not at.error and "Pixels kept" in metrics(at)


def edit_table(at, key, edits, deleted=()):
    at.session_state[key] = {"edited_rows": edits, "added_rows": [], "deleted_rows": list(deleted)}
    return at.run()


def test_a_bad_table_cell_shows_an_error_not_a_traceback():
    at = run()
    edit_table(at, "bg_rgb_table_v0", {1: {"G": "abc"}})  # the grid's number column turns text into nothing
    assert_clean(at)
    assert "Target row 2, column G" in errors(at)
    assert "Pixels kept" not in metrics(at)
    edit_table(at, "bg_rgb_table_v0", {1: {"G": 999}})
    assert "Target row 2, column G is 999" in errors(at)
    edit_table(at, "bg_rgb_table_v0", {}, deleted=[0, 1, 2, 3])
    assert_clean(at)
    assert "empty" in errors(at)
    at.button(key="bg_rgb_reset").click().run()
    assert_clean(at)
    assert not at.error and at.data_editor[0].value.shape == (4, 4)


def test_an_edited_target_changes_the_mask():
    at = run()
    before = metrics(at)["Pixels kept"]
    edit_table(at, "bg_rgb_table_v0", {i: {"threshold": 1} for i in range(4)})
    assert_clean(at)
    assert not at.error and metrics(at)["Pixels kept"] != before


def test_a_grabcut_rectangle_over_the_whole_image_is_refused():
    at = run()
    at.segmented_control(key="bg_method").set_value("grabcut").run()
    at.slider(key="bg_gc_x").set_value((0, 100)).run()
    at.slider(key="bg_gc_y").set_value((0, 100)).run()
    assert_clean(at)
    assert "covers the whole image" in errors(at)
    at.slider(key="bg_gc_x").set_value((20, 20)).run()
    assert_clean(at)
    assert "rect_fraction w" in errors(at)


def test_the_folder_section_asks_for_a_data_set():
    at = run()
    assert "No data set is loaded" in " ".join(i.value for i in at.info)
    assert not [b for b in at.button if b.key == "bg_folder_run"]


def test_a_whole_folder_runs_in_the_background(tmp_path):
    src = tmp_path / "seedlings"
    for i in range(3):
        (src / "rosette").mkdir(parents=True, exist_ok=True)
        Image.fromarray(seedling_photo(seed=i, size=48, kind="rosette")[0]).save(src / "rosette" / f"{i}.png")
    (src / "rosette" / "notes.jpg").write_text("not a picture")
    files = sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file())
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[datasets.DATASET_KEY] = SimpleNamespace(root=src, files=files, name="tiny seedlings", source="upload")
    run(at)
    assert "tiny seedlings" in " ".join(m.value for m in at.markdown)
    at.button(key="bg_folder_run").click().run()
    assert_clean(at)
    # the page polls the job; it may have finished within the click's own run
    rerun_until(at, lambda at: "bg_folder_result" in at.session_state, timeout=60,
                what="the folder run's summary reaching the page after the click")
    summary = at.session_state["bg_folder_result"]
    assert len(summary.written) == 3 and [p for p, _ in summary.skipped] == ["rosette/notes.jpg"]
    assert summary.dest.parent == workspace_of(at).path / "files"  # the user's own private workspace
    assert summary.dest.name.startswith("tiny-seedlings-no-background-")
    assert sorted(p.name for p in summary.dest.rglob("*.png")) == ["0.png", "1.png", "2.png"]
    assert "Wrote 3 of 4 images" in " ".join(w.value for w in at.warning)
    assert at.get("download_button")
    assert sorted(p.name for p in src.rglob("*")) == ["0.png", "1.png", "2.png", "notes.jpg", "rosette"]

    # A reload (a new session with the workspace link): the run's summary and its download are still there.
    again = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    again.query_params["ws"] = at.session_state["cvx_ws_token"]
    again.session_state[datasets.DATASET_KEY] = at.session_state[datasets.DATASET_KEY]
    run(again)
    assert "Wrote 3 of 4 images" in " ".join(w.value for w in again.warning) and again.get("download_button")
    assert again.session_state["bg_folder_result"].dest == summary.dest


def slow_soil_folder(tmp_path, n=40, side=1000):
    """``n`` large photographs of bare soil: each takes a while (a third of a second here), and nothing is kept,
    so little is written. Hard links of one small file (a few KiB on disk), copies where links are refused."""
    src = tmp_path / "soil-photos"
    (src / "soil").mkdir(parents=True)
    first = src / "soil" / "000.png"
    Image.new("RGB", (side, side), (120, 85, 60)).save(first)
    for i in range(1, n):
        try:
            os.link(first, src / "soil" / f"{i:03d}.png")
        except OSError:
            shutil.copyfile(first, src / "soil" / f"{i:03d}.png")
    return src, sorted(str(p.relative_to(src)) for p in src.rglob("*.png"))


def progress_texts(at) -> str:
    return " ".join(str(p.proto.text) for p in at.get("progress"))


def test_a_folder_run_shows_progress_and_stops_on_request(tmp_path):
    # The run is a job in a Ray worker (another process): it is made slow by its images, not by a patch here.
    src, files = slow_soil_folder(tmp_path)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[datasets.DATASET_KEY] = SimpleNamespace(root=src, files=files, name="forty", source="upload")
    run(at)
    at.button(key="bg_folder_run").click().run()
    assert_clean(at)
    # the job reports its images from its own process: wait for the page to show one, not a fixed time
    rerun_until(at, lambda at: re.search(r"\b[1-9][0-9]* of 40 images", progress_texts(at)),
                timeout=90, what="the progress bar showing the first images of 40 after the click")
    assert next(b for b in at.button if b.key == "bg_folder_run").disabled  # one run at a time
    job = jobs.default_manager().get(at.session_state["bg_job_id"])
    assert job.active and job.kind == "background"
    # A reload (a new session on the workspace link) follows the running folder run, and can stop it.
    reloaded = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    reloaded.query_params["ws"] = at.session_state["cvx_ws_token"]
    reloaded.session_state[datasets.DATASET_KEY] = at.session_state[datasets.DATASET_KEY]
    at = run(reloaded)
    assert at.session_state["bg_job_id"] == job.id
    rerun_until(at, lambda at: any(b.key == "bg_stop" for b in at.button), timeout=30,
                what="the reloaded page's Stop button for the running folder run")
    at.button(key="bg_stop").click().run()
    assert_clean(at)
    # a snapshot does not update itself: ask the client for the job's news
    assert not job.wait(30).active, "the folder run did not end within 30 s of pressing Stop"
    job = jobs.default_manager().get(job.id)
    assert job.status == "stopped", job.status
    rerun_until(at, lambda at: "bg_folder_result" in at.session_state, timeout=30,
                what="the stopped run's summary reaching the page")
    assert "Stopped early" in " ".join(w.value for w in at.warning)
    summary = at.session_state["bg_folder_result"]
    assert summary.stopped and summary.total == 40 and 1 <= len(summary.written) < 40
    assert len(list(summary.dest.rglob("*.png"))) == len(summary.written)  # what was written is kept
    assert "bg_job_id" not in at.session_state


def test_the_distance_maps_of_the_targets():
    at = run()
    at.toggle(key="bg_show_margins").set_value(True).run()
    assert_clean(at)
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    # the chapter's (71, 86, 38) below 1600 and (56, 63, 43) below 500, in its units
    assert len(charts) == 4 and "#475626, threshold 1600" in charts[3] and "#383f2b, threshold 500" in charts[3]

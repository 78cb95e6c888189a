"""AppTest tests of the Transfer page: offline weights, Keras' counts (the seed's), every mode trained as a
background job with Stop, the runs compared and judged, the model handed to the Visualize page, bad input."""
import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from apptest_helpers import (assert_clean, errors, metrics, page_runs, rerun_until, wait_for_job_end, wait_until,
                             workspace_of)

from cvcore import jobs, samples
from cvcore.folders import ImageDataset, scan_image_folder

TIMEOUT = 180
pytestmark = pytest.mark.usefixtures("offline_weights")  # tests/conftest.py: nothing downloads


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("state")  # the demo folder is written once for the module


@pytest.fixture(autouse=True)
def fresh(monkeypatch, state_dir):
    monkeypatch.setenv("CVCORE_STATE_DIR", str(state_dir))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield


def open_page(dataset=None, random_weights=True, token=None):
    """The Transfer page in a new session; in the workspace of ``token`` (its link) when given."""
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    if token is not None:
        at.query_params["ws"] = token
    if dataset is not None:
        at.session_state["cvx_dataset"] = dataset
    at.run()
    at.switch_page("pages/transfer.py").run()
    assert_clean(at)
    if random_weights:
        at.button(key="tl_use_random").click().run()
        assert_clean(at)
    return at


def per_class_slider(at):
    return next(s for s in at.select_slider if s.key.startswith("tl_per_class"))


def train(at, mode, *, epochs=1, timeout=300):
    """Pick a mode, press Train, poll the page until the job has ended; returns the new run."""
    before = len(page_runs(at, "transfer"))
    at.radio(key="tl_mode").set_value(mode).run()
    at.number_input(key=f"tl_epochs_{mode}").set_value(epochs).run()
    at.button(key="tl_train").click().run()
    assert_clean(at)
    wait_for_job_end(at, "tl_job_id", timeout=timeout, what=f"the {mode} job's end")
    rerun_until(at, lambda at: "tl_job_id" not in at.session_state or errors(at), timeout=60,
                what=f"the {mode} run's end on the page")
    runs = page_runs(at, "transfer")
    assert len(runs) == before + 1, errors(at)
    return runs[-1]


def twelve_classes(tmp_path):
    root = tmp_path / "twelve"
    rng = np.random.default_rng(0)
    for c in range(12):
        (root / f"class{c:02d}").mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / f"class{c:02d}" / f"{i}.png")
    return ImageDataset.from_scan(scan_image_folder(root), per_class=1)


def test_offline_the_page_says_why_and_offers_random_weights():
    at = open_page(random_weights=False)
    warning = " ".join(w.value for w in at.warning)
    assert "ImageNet weights for VGG16 could not be had" in warning and "CVCORE_WEIGHTS_DIR" in warning
    assert any("offline demo is used" in i.value for i in at.info)
    at.button(key="tl_use_random").click().run()
    assert_clean(at)
    assert at.radio(key="tl_weights").value == "Random (no pretraining)"
    m = metrics(at)
    assert m["Classes"] == "10" and m["Training images"] == "480" and m["Validation images"] == "120"
    assert at.radio(key="tl_mode").value == "baseline"  # the sanity check first
    assert m["Parameters (all trainable)"] == f"{150 * 150 * 3 * 10 + 10:,}"
    at.radio(key="tl_mode").set_value("frozen").run()
    m = metrics(at)
    # VGG16 at 150 x 150 with Flatten and Dense(10), counted by Keras.
    assert (m["Total parameters"], m["Trainable"], m["Non-trainable"]) == ("14,796,618", "81,930", "14,714,688")


def test_the_seeds_counts_on_twelve_classes_in_every_mode(tmp_path):
    at = open_page(twelve_classes(tmp_path))
    at.radio(key="tl_mode").set_value("frozen").run()
    m = metrics(at)
    assert (m["Total parameters"], m["Trainable"], m["Non-trainable"]) == ("14,813,004", "98,316", "14,714,688")
    assert "14,714,688" in " ".join(c.value for c in at.caption)
    at.radio(key="tl_mode").set_value("finetune").run()
    assert metrics(at)["Trainable"] == "7,177,740"  # block5 unfrozen
    assert at.number_input(key="tl_ft_layers_vgg16").value == 4
    at.radio(key="tl_mode").set_value("scratch").run()
    assert (metrics(at)["Trainable"], metrics(at)["Non-trainable"]) == ("14,813,004", "0")
    at.radio(key="tl_mode").set_value("baseline").run()
    assert metrics(at)["Parameters (all trainable)"] == f"{150 * 150 * 3 * 12 + 12:,}"
    at.radio(key="tl_mode").set_value("frozen").run()
    at.segmented_control(key="tl_head").set_value("gap").run()
    assert metrics(at)["Trainable"] == f"{512 * 12 + 12:,}"
    costs = [d.value for d in at.dataframe if "each epoch" in d.value.columns]
    assert len(costs) == 1 and len(costs[0]) == 5
    assert_clean(at)


def test_every_mode_trains_in_the_background_and_hands_its_model_to_visualize():
    at = open_page()
    at.number_input(key="tl_side_vgg16").set_value(32).run()
    per_class_slider(at).set_value(5).run()
    for mode in ("baseline", "features", "frozen", "finetune", "scratch"):
        run = train(at, mode)
        assert run.status == "finished" and run.evaluation and run.extra["train_images"] == 50 and run.has_model
        # Exactly what it trained and validated on: 5 files of each class, and the split's 120.
        assert len(run.data["train"]) == 50 and len(run.data["validation"]) == 120 and run.data["split"]
        assert run.extra["class_names"][0] == "Ankle-boot"  # Keras' order
        assert workspace_of(at).load_arrays(run.id, "validation")["labels"].shape == (120,)
        assert len(run.phases) == (2 if mode == "finetune" else 1)
    runs = page_runs(at, "transfer")
    assert runs[1].extra["extraction"]["cached"] is False and runs[3].extra["extraction"]["cached"] is True  # reused
    assert any("The baseline (Transfer 1) reached" in i.value for i in at.info)
    assert metrics(at)["Validation accuracy"].endswith("%")

    at.switch_page("pages/visualize.py").run()
    assert_clean(at)
    m = metrics(at)
    assert m["Input"] == "32 x 32 x 3" and m["Classes"] == "10"
    assert at.selectbox(key="vis_run").value == runs[-1].id and runs[-1].name == "Transfer 5"
    assert at.selectbox(key="vis_test_class").options[0] == "Ankle-boot"


def test_a_run_can_be_stopped_and_is_kept_as_stopped():
    at = open_page()
    at.number_input(key="tl_side_vgg16").set_value(32).run()
    per_class_slider(at).set_value(5).run()
    at.radio(key="tl_mode").set_value("scratch").run()
    at.number_input(key="tl_epochs_scratch").set_value(200).run()
    at.button(key="tl_train").click().run()
    client, job_id = jobs.default_manager(), at.session_state["tl_job_id"]
    # Until an epoch has ended: the run has something to keep.
    wait_until(lambda: (client.get(job_id).progress or {}).get("history", {}).get("loss"), timeout=120, interval=0.2,
               what="a first epoch in the job's progress", details=lambda: f"job {client.get(job_id)}")
    rerun_until(at, lambda at: any(b.key == "tl_stop" for b in at.button), timeout=30, what="the Stop button")
    at.button(key="tl_stop").click().run()
    rerun_until(at, lambda at: "tl_job_id" not in at.session_state, timeout=120, what="the stopped run's end")
    run = page_runs(at, "transfer")[-1]
    assert run.status == "stopped" and 1 <= run.epochs_done < 200 and run.evaluation
    # A value that does not apply (no features for this mode) shows as an empty cell, never as "None".
    table = next(d for d in at.dataframe if "status" in d.value.columns)
    assert table.value["status"].iloc[-1] == "stopped"
    assert table.proto.HasField("placeholder") and table.proto.placeholder == ""


def test_the_augment_pages_recipe_is_applied_when_asked():
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    at.session_state["aug_keras_recipe"] = {"engine": "keras", "rotation_range": 33.0, "horizontal_flip": True}
    at.run()
    at.switch_page("pages/transfer.py").run()
    at.button(key="tl_use_random").click().run()
    at.radio(key="tl_mode").set_value("frozen").run()
    at.toggle(key="tl_augment").set_value(True).run()
    assert_clean(at)
    text = " ".join(c.value for c in at.caption)
    assert "The Augment page's recipe" in text and "rotation_range 33.0" in text
    at.radio(key="tl_mode").set_value("features").run()
    assert at.toggle(key="tl_augment").disabled  # cached features are computed once: never augmented


def test_a_file_gone_since_the_scan_fails_the_run_with_a_message(tmp_path):
    root = samples.write_dataset_folder(tmp_path / "d", "digits", per_class=4, size=28)
    ds = ImageDataset.from_scan(scan_image_folder(root), per_class=1)
    (root / ds.subset("validation")[0][0].relative_to(root)).write_text("not an image any more")
    at = open_page(ds)
    at.number_input(key="tl_side_vgg16").set_value(32).run()
    at.radio(key="tl_mode").set_value("baseline").run()
    at.button(key="tl_train").click().run()
    rerun_until(at, errors, timeout=60, what="an error message on the page")
    assert "Training failed" in errors(at) and "scan it again" in errors(at)


def test_a_data_set_without_validation_images_is_refused_with_what_to_do(tmp_path):
    ds = twelve_classes(tmp_path).resplit(fraction=0.0)
    at = open_page(ds, random_weights=False)
    assert "no validation images" in errors(at) and "Data page" in errors(at)
    assert "tl_train" not in [b.key for b in at.button]


def test_a_transfer_run_is_still_there_after_a_reload_and_a_restart():
    at = open_page()
    at.number_input(key="tl_side_vgg16").set_value(32).run()
    per_class_slider(at).set_value(3).run()
    run = train(at, "baseline")
    st.cache_resource.clear()  # as after a server restart: nothing from memory
    st.cache_data.clear()
    again = open_page(token=at.session_state["cvx_ws_token"], random_weights=False)
    table = next(d.value for d in again.dataframe if "status" in d.value.columns)
    assert list(table["run"]) == ["Transfer 1"] and table["val acc"].iloc[0] == pytest.approx(run.evaluation["accuracy"])
    assert metrics(again)["Validation accuracy"] == f"{run.evaluation['accuracy']:.1%}"
    assert any("The baseline (Transfer 1) reached" in i.value for i in again.info)
    again.switch_page("pages/visualize.py").run()
    assert_clean(again)
    assert again.selectbox(key="vis_run").value == run.id and metrics(again)["Input"] == "32 x 32 x 3"
    assert page_runs(open_page(random_weights=False), "transfer") == []  # a stranger sees none of it

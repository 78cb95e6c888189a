"""AppTest tests of the Train page: building, training in the background, comparing, evaluating."""
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

keras = pytest.importorskip("keras")

from apptest_helpers import page_runs, rerun_until, wait_for_job_end, wait_until, workspace_of  # noqa: E402
from cvcore import jobs  # noqa: E402

TRAIN = "../pages/train.py"


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch):
    def no_download():
        raise Exception("URL fetch failure on https://example/mnist.npz: None -- tests never download")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", no_download)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield


def run_page():
    at = AppTest.from_file(TRAIN, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def small_digits_run(at, epochs=2):
    """Choose the bundled digits, few images and epochs: a run of a few seconds."""
    at.selectbox(key="trn_dataset").set_value("digits").run()
    at.select_slider(key="trn_n_train_digits").set_value(1000).run()
    at.number_input(key="trn_epochs").set_value(epochs).run()
    return at


def wait_for_runs(at, count, timeout=180):
    # Ended runs in the workspace, and the page no longer following a job: the page has shown them.
    wait_for_job_end(at, "trn_job_id", timeout=timeout, what=f"the job of run {count} ending")
    return rerun_until(at, lambda at: len([r for r in page_runs(at) if r.status != "running"]) >= count
                       and "trn_job_id" not in at.session_state, timeout=timeout, what=f"run {count} on the page")


def save_model(model, tmp_path, name):
    path = tmp_path / name
    model.save(path)
    return path.read_bytes()


def upload_model(at, data: bytes, name: str):
    at.file_uploader(key="trn_upload").set_value((name, data, "application/zip")).run()
    at.button(key="trn_add_upload").click().run()
    return at


def test_defaults_show_the_basic_net_and_its_keras_count():
    at = run_page()
    params = {m.label: m.value for m in at.metric}
    assert params["Parameters"] == "3,730"
    assert "3,730" in " ".join(c.value for c in at.caption)  # the published count beside it
    assert any("Train a model" in i.value for i in at.info)
    assert not at.button(key="trn_train").disabled


def test_presets_load_with_their_published_counts():
    at = run_page()
    for name, count in [("Keras mnist_cnn (32-64 convolutions, dropout)", "1,199,882"),
                        ("64 filters 5x5, Dense 100", "924,374")]:
        at.selectbox(key="trn_preset").set_value(name).run()
        at.button(key="trn_load").click().run()
        assert not at.exception
        assert {m.label: m.value for m in at.metric}["Parameters"] == count


def test_a_stack_without_a_classifier_cannot_be_trained():
    at = run_page()
    at.selectbox(key="trn_preset").set_value("Three convolutions, no max pooling (conv base)").run()
    at.button(key="trn_load").click().run()
    warning = " ".join(w.value for w in at.warning)
    assert "cannot be trained as a classifier" in warning
    assert "15,860,224" in " ".join(c.value for c in at.caption)  # what a Dense(512) would cost
    assert at.button(key="trn_train").disabled


def test_an_invalid_stack_names_the_layer_before_training():
    at = run_page()
    for _ in range(5):  # pool the 5x5 map down to nothing
        at.selectbox(key="trn_add_type").set_value("MaxPooling2D").run()
        at.number_input(key=f"trn_add_pos_{len(at.session_state['trn_layers'])}").set_value(5).run()
        at.button(key="trn_add").click().run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "Layer" in errors and "MaxPooling2D" in errors
    assert at.button(key="trn_train").disabled


def test_layers_can_be_added_moved_and_removed():
    at = run_page()
    n = len(at.session_state["trn_layers"])
    at.selectbox(key="trn_add_type").set_value("Dropout").run()
    at.number_input(key=f"trn_add_pos_{n}").set_value(5).run()
    at.button(key="trn_add").click().run()
    types = [layer["type"] for layer in at.session_state["trn_layers"]]
    assert types[4] == "Dropout" and len(types) == n + 1
    uid = at.session_state["trn_layer_ids"][4]
    at.button(key=f"trn_{uid}_up").click().run()
    assert at.session_state["trn_layers"][3]["type"] == "Dropout"
    at.button(key=f"trn_{uid}_del").click().run()
    assert [layer["type"] for layer in at.session_state["trn_layers"]] == types[:4] + types[5:]
    assert {m.label: m.value for m in at.metric}["Parameters"] == "3,730"


def test_a_regularizer_changes_nothing_in_the_count_but_shows():
    at = run_page()
    uid = at.session_state["trn_layer_ids"][0]
    at.selectbox(key=f"trn_{uid}_kernel_regularizer").set_value("L2").run()
    assert at.session_state["trn_layers"][0]["kernel_regularizer"] == {"l2": 0.01}
    assert {m.label: m.value for m in at.metric}["Parameters"] == "3,730"


@pytest.mark.slow
def test_train_compare_evaluate_save_and_export():
    at = small_digits_run(run_page())
    at.button(key="trn_train").click().run()
    wait_for_runs(at, 1)
    # a second run with another optimizer, to compare
    at.selectbox(key="trn_opt").set_value("sgd").run()
    at.button(key="trn_train").click().run()
    wait_for_runs(at, 2)
    runs = page_runs(at)
    assert [r.name for r in runs] == ["Run 1", "Run 2"] and [r.status for r in runs] == ["finished", "finished"]
    assert len(runs[0].history["loss"]) == 2 and len(runs[1].history["val_accuracy"]) == 2
    assert at.multiselect(key="trn_compare_2").value == [r.id for r in runs]
    verdicts = [m.value for m in at.markdown if m.value.startswith("**Run")]
    assert len(verdicts) == 2
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Test accuracy"]) > 0.3
    for view in ("Predictions", "Mistakes", "Activations", "Draw", "Save, export"):
        at.session_state["trn_view"] = view
        at.run()
        assert not at.exception, (view, [e.value for e in at.exception])
    assert "model.fit(" in at.code[0].value  # the exported script


@pytest.mark.slow
def test_stop_ends_a_run_early_and_keeps_it():
    at = small_digits_run(run_page(), epochs=40)
    at.toggle(key="trn_fast").set_value(False).run()
    at.button(key="trn_train").click().run()
    client, job_id = jobs.default_manager(), at.session_state["trn_job_id"]
    wait_until(lambda: (client.get(job_id).progress or {}).get("history", {}).get("loss"), timeout=60,
               what="a first epoch in the job's progress", details=lambda: f"job {client.get(job_id)}")
    at.run()
    at.button(key="trn_stop").click().run()
    wait_for_runs(at, 1)
    run = page_runs(at)[0]
    assert run.status == "stopped" and 1 <= run.epochs_done < 40
    table = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    assert table["verdict"].iloc[0].endswith("(stopped)")


def test_the_workspaces_other_job_blocks_train_or_with_two_per_user_queues_it(monkeypatch):
    """One job per workspace by default (Train is off, and says why); with CVCORE_JOBS_PER_USER=2 the run is
    queued behind the workspace's other job, says so, and runs once that one has ended."""
    import dataclasses

    manager = jobs.default_manager()
    at = small_digits_run(run_page(), epochs=1)
    other = manager.submit(workspace_of(at).id, "cvcore.job_probes:count", {"steps": 600, "delay": 0.1},
                           name="Score-CAM", kind="probe")
    try:
        at.run()
        captions = lambda: " ".join(c.value for c in at.caption)  # noqa: E731
        assert at.button(key="trn_train").disabled and "other job (Score-CAM) must end first" in captions()

        monkeypatch.setattr(manager, "settings", dataclasses.replace(manager.settings, per_user=2))
        at.run()
        assert not at.button(key="trn_train").disabled and "runs first; this one waits for it" in captions()
        at.button(key="trn_train").click().run()
        queued = manager.get(at.session_state["trn_job_id"])
        assert queued.status == "queued" and "Waits for your other job (Score-CAM) to end" in queued.waiting
        assert any("Waits for your other job (Score-CAM)" in i.value for i in at.info)
        assert at.button(key="trn_train").disabled  # the page follows one run at a time
        manager.stop(other.id)
        assert wait_for_runs(at, 1)
    finally:
        manager.stop(other.id)


def test_a_model_file_with_code_is_refused_on_the_page(tmp_path):
    at = small_digits_run(run_page(), epochs=1)
    inputs = keras.Input((28, 28, 1))
    bad = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    upload_model(at, save_model(bad, tmp_path, "bad.keras"), "bad.keras")
    assert not at.exception
    assert "Python code" in " ".join(e.value for e in at.error)
    assert page_runs(at) == []


def test_a_model_file_is_a_run_before_any_training(tmp_path):
    """Loading a .keras model needs no run trained first; its row says it was not trained here."""
    at = small_digits_run(run_page(), epochs=1)
    assert any("Train a model, or load one" in i.value for i in at.info)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    upload_model(at, save_model(model, tmp_path, "mine.keras"), "mine.keras")
    assert not at.exception, [e.value for e in at.exception]
    runs = page_runs(at)
    assert [(r.name, r.title, r.kind, r.config) for r in runs] == [("Run 1", "uploaded mine.keras", "upload", {})]
    element = next(d for d in at.dataframe if "verdict" in d.value.columns)
    row = element.value.iloc[0]
    assert row["verdict"] == "uploaded: not trained here"
    # What does not apply to a model trained elsewhere is missing, and missing shows as an empty cell,
    # never as the text "None" (Streamlit's default placeholder).
    assert all(row[c] is None or row[c] != row[c] for c in ("images", "optimizer", "epochs", "train acc",
                                                           "val acc", "seconds"))
    assert element.proto.placeholder == "" and element.proto.HasField("placeholder")
    # No curves to compare: a caption says so instead of empty charts.
    assert not at.multiselect
    assert [c.key for c in at.get("plotly_chart")] == ["trn_confusion"]  # the run's own view; no comparison
    assert any("a loaded model has none" in c.value for c in at.caption)
    assert 0.0 <= row["test acc"] <= 1.0
    assert float({m.label: m.value for m in at.metric}["Test accuracy"]) == pytest.approx(row["test acc"], abs=1e-4)
    at.session_state["trn_view"] = "Save, export"
    at.run()
    assert not at.exception
    assert "no training script" in " ".join(c.value for c in at.caption)


# ============================================================================ runs that last


def same_workspace(at):
    """A second session (a reload, a bookmark, another tab) with ``at``'s workspace link."""
    again = AppTest.from_file(TRAIN, default_timeout=120)
    again.query_params["ws"] = at.session_state["cvx_ws_token"]
    again.run()
    assert not again.exception, [e.value for e in again.exception]
    return again


def test_a_run_is_still_there_after_a_reload_and_can_be_renamed_and_deleted(tmp_path):
    at = small_digits_run(run_page(), epochs=1)
    assert at.query_params["ws"] == at.session_state["cvx_ws_token"]  # the link is in the URL
    at.button(key="trn_train").click().run()
    wait_for_runs(at, 1)
    run = page_runs(at)[0]
    assert run.has_model and run.data["dataset"] == "digits" and run.data["train"] == "the first 1000 training images"
    st.cache_resource.clear()  # as after a server restart: nothing from memory
    st.cache_data.clear()
    again = same_workspace(at)
    table = next(d.value for d in again.dataframe if "verdict" in d.value.columns)
    assert list(table["run"]) == ["Run 1"] and table["epochs"].iloc[0] == 1
    assert float({m.label: m.value for m in again.metric}["Test accuracy"]) == pytest.approx(run.evaluation["accuracy"],
                                                                                           abs=1e-4)
    # A stranger's session (no link) sees none of it.
    assert page_runs(run_page()) == []
    again.session_state["trn_view"] = "Save, export"
    again.run()
    again.text_input(key=f"trn_name_{run.id}").set_value("digits, one epoch").run()
    again.button(key=f"trn_rename_{run.id}").click().run()
    assert [r.name for r in page_runs(again)] == ["digits, one epoch"]
    assert "digits, one epoch" in list(next(d.value for d in again.dataframe if "verdict" in d.value.columns)["run"])
    again.button(key=f"trn_delete_{run.id}").click().run()
    assert page_runs(again) == [] and any("Train a model, or load one" in i.value for i in again.info)


def test_an_interrupted_run_shows_as_interrupted_with_its_saved_epochs():
    """A run whose job stopped beating (the server went away mid-run) is shown, never silently missing;
    one whose job still beats is left as running."""
    at = small_digits_run(run_page(), epochs=1)
    ws = workspace_of(at)
    from cvcore.runs import RunConfig

    config = RunConfig(spec={"input_shape": [28, 28, 1], "layers": []}, dataset="digits", n_train=100, n_val=10)
    dead = ws.new_run("train", name="Run 1", title="cut short", config=config.as_dict(), data={"dataset": "digits"})
    dead.history = {"loss": [2.0, 1.5], "accuracy": [0.3, 0.5], "val_loss": [2.1, 1.6], "val_accuracy": [0.3, 0.4]}
    ws.save_run(dead)
    old = dead.created - 3600
    import os

    os.utime(ws.path / "runs" / dead.id / "heartbeat", (old, old))
    alive = ws.new_run("train", name="Run 2", title="still going", config=config.as_dict(), data={"dataset": "digits"})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    assert list(table["run"]) == ["Run 1", "Run 2"]
    assert table["verdict"].iloc[0].endswith("(interrupted)") and table["epochs"].iloc[0] == 2
    assert table["verdict"].iloc[1].endswith("(running)")
    assert ws.run(dead.id).status == "running" and ws.run(alive.id).status == "running"  # reading changed nothing
    assert any("interrupted" in c.value for c in at.caption)


def test_damaged_and_foreign_files_in_the_workspace_are_reported_and_skipped():
    import pickle

    at = small_digits_run(run_page(), epochs=1)
    ws = workspace_of(at)
    good = ws.new_run("upload", name="Run 1", title="fine", data={"dataset": "digits"})
    good.status = "finished"
    ws.save_run(good)
    evil = ws.new_run("upload", name="Run 2", title="evil", data={"dataset": "digits"})

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    import os

    (ws.path / "runs" / evil.id / "run.json").write_bytes(pickle.dumps(Boom()))
    cut = ws.new_run("upload", name="Run 3", title="cut", data={"dataset": "digits"})
    text = (ws.path / "runs" / cut.id / "run.json").read_bytes()
    (ws.path / "runs" / cut.id / "run.json").write_bytes(text[: len(text) // 2])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = " ".join(w.value for w in at.warning)
    assert evil.id in warnings and cut.id in warnings and "not JSON" in warnings
    table = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    assert list(table["run"]) == ["Run 1"]
    assert not os.path.exists("pwned")

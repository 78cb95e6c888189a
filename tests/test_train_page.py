"""AppTest tests of the Train page: building, training in the background, comparing, evaluating."""
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

keras = pytest.importorskip("keras")

from apptest_helpers import rerun_until, wait_until  # noqa: E402
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
    return rerun_until(at, lambda at: len(at.session_state["trn_runs"]) >= count, timeout=timeout,
                       what=f"run {count} on the page")


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
    runs = at.session_state["trn_runs"]
    assert [r["label"] for r in runs] == ["Run 1", "Run 2"]
    assert len(runs[0]["history"]["loss"]) == 2 and len(runs[1]["history"]["val_accuracy"]) == 2
    assert at.multiselect(key="trn_compare_2").value == ["Run 1", "Run 2"]
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
    job = jobs.default_manager().get(at.session_state["trn_job_id"])
    wait_until(lambda: (job.progress or {}).get("history", {}).get("loss"), timeout=60,
               what="a first epoch in the job's progress", details=lambda: f"job status {job.status}")
    at.run()
    at.button(key="trn_stop").click().run()
    wait_for_runs(at, 1)
    run = at.session_state["trn_runs"][0]
    assert run["stopped"] and 1 <= len(run["history"]["loss"]) < 40
    table = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    assert table["verdict"].iloc[0].endswith("(stopped)")


def test_a_model_file_with_code_is_refused_on_the_page(tmp_path):
    at = small_digits_run(run_page(), epochs=1)
    inputs = keras.Input((28, 28, 1))
    bad = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    upload_model(at, save_model(bad, tmp_path, "bad.keras"), "bad.keras")
    assert not at.exception
    assert "Python code" in " ".join(e.value for e in at.error)
    assert at.session_state["trn_runs"] == []


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
    runs = at.session_state["trn_runs"]
    assert [(r["label"], r["title"], r["config"]) for r in runs] == [("Run 1", "uploaded mine.keras", None)]
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

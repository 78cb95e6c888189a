"""Train a ConvNet: build a layer stack, train it live, compare runs, look inside.

Reads top-down: data, model, optimizer, training (a background job the page
polls, so it survives clicks and never blocks other sessions), runs compared
side by side, then one run evaluated. All numerics are cvcore's.
"""
import json
import uuid

import streamlit as st

from cvcore import evaluation, export, jobs, models, saving
from cvcore.data import DATASET_TITLES, DATASETS
from cvcore.errors import CvcoreError
from cvcore.runs import RunConfig, RunResult, run_training
from cvcore.training import describe_progress
from cvcore.visualize import activations, blank_fraction, layer_names
from ui import plots
from ui.common import dataset, drawn_digit, show_error, wide_layout
from ui.diagram import model_dot
from ui.model_builder import LAYERS_KEY, layer_stack_editor, load_stack

RUNS_KEY, JOB_KEY, META_KEY = "trn_runs", "trn_job_id", "trn_job_meta"
MODELS_KEPT = 6  # trained models kept per session (older runs keep their curves)
DEFAULT_PRESET = "Basic CNN (6 and 12 filters)"
INPUT_SHAPE = [28, 28, 1]

st.session_state.setdefault("session_id", uuid.uuid4().hex)
st.session_state.setdefault(RUNS_KEY, [])
st.session_state.setdefault(META_KEY, {})  # job id -> what the run was, for its record
manager = jobs.default_manager()

wide_layout()
st.title("Train a ConvNet")
st.caption("Build a ConvNet layer by layer or start from the chapters' models, train it on digits or clothes, "
           "and watch the curves: the gap between training and validation tells under- from overfitting.")


@st.cache_data(show_spinner=False, max_entries=64)
def summary_of(spec_json: str):
    """Keras' own summary rows of a spec (building the model is the check that it can be built)."""
    model = models.build_model(json.loads(spec_json))
    return models.summarize(model), int(model.count_params())


def describe_optimizer(opt) -> str:
    """'SGD (lr 0.01, momentum 0.9, Nesterov)' for the runs table."""
    opt = {"name": opt} if isinstance(opt, str) else dict(opt)
    name = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop"}.get(opt.pop("name"), "?")
    parts = [f"lr {opt.pop('learning_rate'):g}"] if "learning_rate" in opt else []
    if opt.get("momentum"):
        parts.append(f"momentum {opt['momentum']:g}")
    if opt.get("nesterov"):
        parts.append("Nesterov")
    return f"{name} ({', '.join(parts)})" if parts else name


def record_finished(job) -> None:
    """Turn a finished job into a run in this session's history (once)."""
    runs = st.session_state[RUNS_KEY]
    if any(r["job"] == job.id for r in runs):
        return
    result: RunResult = job.result
    meta = st.session_state[META_KEY].pop(job.id)
    number = len(runs) + 1
    runs.append({
        "id": uuid.uuid4().hex, "job": job.id, "number": number, "label": f"Run {number}", "title": meta["title"], "config": meta["config"],
        "dataset": meta["config"].dataset, "history": result.history, "stopped": result.stopped,
        "seconds": result.seconds, "model": result.model, "evaluation": result.evaluation,
    })
    for old in runs[:-MODELS_KEPT]:  # memory: keep the newest models, every run's curves
        old["model"] = old["evaluation"] = old["keras_bytes"] = None


# ============================================================================ 1. data
st.subheader("1 · Data", divider="gray")
c1, c2, c3 = st.columns(3)
name = c1.selectbox("Data set", DATASETS, index=1, format_func=DATASET_TITLES.get, key="trn_dataset",
                    help="Fashion-MNIST is harder than MNIST: the curves show more.")
(data, used, notice) = dataset(name)
if notice:
    st.warning(notice, icon=":material/cloud_off:")
(x_train, y_train), (x_test, y_test), class_names = data
train_sizes = [n for n in (500, 1000, 2000, 5000, 10000, 20000, 30000, 60000) if n < len(x_train)] + [len(x_train)]
n_train = c2.select_slider("Training images", train_sizes, value=min(5000, len(x_train)) if 5000 in train_sizes
                           else train_sizes[-1], key=f"trn_n_train_{used}",
                           help="The first N training images. Fewer train faster; more generalise better.")
val_sizes = [n for n in (0, 500, 1000, 2000, 5000) if n < len(x_test)] + [len(x_test)]
n_val = c3.select_slider("Validation images", val_sizes, value=min(1000, len(x_test)) if 1000 in val_sizes
                         else val_sizes[-1], key=f"trn_n_val_{used}",
                         help="The first N test images, watched after every epoch (the chapters pass "
                              "validation_data=(x_test, y_test)). The whole test set gives the final score.")

# ============================================================================ 2. model
st.subheader("2 · Model", divider="gray")
if LAYERS_KEY not in st.session_state:
    load_stack(models.PRESETS[DEFAULT_PRESET]["layers"])
p1, p2 = st.columns([3, 1], vertical_alignment="bottom")
preset = p1.selectbox("Start from a model of the chapters", list(models.PRESETS), key="trn_preset",
                      help="Loading a preset replaces the layers below.")
p2.button("Load preset", key="trn_load", icon=":material/download:", width="stretch",
          on_click=lambda: load_stack(models.PRESETS[st.session_state["trn_preset"]]["layers"]))
st.caption(f"{models.PRESET_NOTES.get(preset, '')} Published parameter count: "
           f"**{models.PRESET_PARAMS[preset]:,}**.")

builder, summary_col = st.columns([3, 2], gap="medium")
with builder:
    layers, slots = layer_stack_editor()
spec = {"input_shape": INPUT_SHAPE, "layers": layers}
problem, shapes, rows, total = None, None, None, None
try:
    shapes = models.validate_spec(spec)
    rows, total = summary_of(json.dumps(spec, sort_keys=True))
except CvcoreError as err:
    problem = err
if problem is None:
    for slot, shape, row in zip(slots, shapes, rows):
        slot.caption(f"→ {' x '.join(str(v) for v in shape[1:])} · {row['params']:,} params")
trainable = problem is None and len(shapes[-1]) == 2 and shapes[-1][1] == len(class_names)
with summary_col:
    if problem is not None:
        show_error(problem, "Fix that layer before training.")
    else:
        st.metric("Parameters", f"{total:,}", help="Keras' own count: model.count_params()")
        st.dataframe(
            [{"layer": f"{i + 1}. {r['type']}", "output shape": " x ".join(str(v) for v in r["output_shape"][1:]),
              "params": r["params"], "trainable": r["trainable"]} for i, r in enumerate(rows)],
            hide_index=True, width="stretch", key="trn_summary")
        if not trainable:
            last = " x ".join(str(v) for v in shapes[-1][1:])
            st.warning(f"The last layer outputs {last}, not {len(class_names)} class scores, so this model "
                       "cannot be trained as a classifier. Add Flatten (or GlobalAveragePooling2D) and "
                       f"Dense({len(class_names)}, activation='softmax').", icon=":material/info:")
            if len(shapes[-1]) == 4:
                cost = models.dense_head_cost(spec, 512)
                st.caption(f"Flattened, its {' x '.join(map(str, cost['feature_map']))} map is "
                           f"{cost['flattened']:,} values; a Dense(512) on it would add "
                           f"{cost['dense_params']:,} parameters. Pooling shrinks that.")
        with st.expander("Diagram", expanded=True):
            st.graphviz_chart(model_dot(spec, shapes, [r["params"] for r in rows]), width="content")

# ============================================================================ 3. optimizer
st.subheader("3 · Optimizer and training", divider="gray")
o1, o2, o3, o4 = st.columns(4)
opt_name = o1.selectbox("Optimizer", ["adam", "sgd", "rmsprop"], key="trn_opt",
                        format_func={"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop"}.get)
optimizer = {"name": opt_name}
if opt_name == "sgd":
    optimizer["learning_rate"] = o2.number_input("learning rate", 1e-5, 1.0, 0.01, format="%.4f", key="trn_sgd_lr")
    optimizer["momentum"] = o3.slider("momentum", 0.0, 0.99, 0.9, 0.01, key="trn_sgd_m",
                                      help="0 is plain SGD; 0.9 keeps 90% of the last step's direction.")
    optimizer["nesterov"] = o4.toggle("Nesterov", key="trn_sgd_nesterov")
elif opt_name == "adam":
    optimizer["learning_rate"] = o2.number_input("learning rate", 1e-5, 1.0, 0.001, format="%.4f", key="trn_adam_lr")
    with o3.popover("beta_1, beta_2, epsilon"):
        optimizer["beta_1"] = st.number_input("beta_1", 0.0, 0.9999, 0.9, format="%.4f", key="trn_adam_b1")
        optimizer["beta_2"] = st.number_input("beta_2", 0.0, 0.99999, 0.999, format="%.5f", key="trn_adam_b2")
        optimizer["epsilon"] = st.number_input("epsilon", 1e-10, 1.0, 1e-7, format="%.1e", key="trn_adam_eps")
else:
    optimizer["learning_rate"] = o2.number_input("learning rate", 1e-5, 1.0, 0.001, format="%.4f", key="trn_rms_lr")
    optimizer["rho"] = o3.slider("rho", 0.0, 0.99, 0.9, 0.01, key="trn_rms_rho")
t1, t2, t3, t4 = st.columns(4)
batch_size = t1.select_slider("Batch size", [8, 16, 32, 64, 128, 256, 512], value=32, key="trn_batch")
epochs = int(t2.number_input("Epochs", 1, 100, 3, key="trn_epochs"))
fast = t3.toggle("Fast", value=True, key="trn_fast",
                 help="Runs many batches per call into TensorFlow (steps_per_execution) with a prefetching "
                      "tf.data pipeline: the same updates, much less overhead. Stop then acts at the end of a chunk.")
seed = int(t4.number_input("Seed", 0, 2**31 - 1, 0, key="trn_seed", help="The same seed gives the same run."))

active = manager.active_job(st.session_state["session_id"])
config = RunConfig(spec=spec, dataset=used, n_train=int(n_train), n_val=int(n_val), optimizer=optimizer,
                   epochs=epochs, batch_size=int(batch_size), fast=fast, seed=seed)


def start_training() -> None:
    try:
        job = manager.submit(st.session_state["session_id"], lambda ctx: run_training(config, data, ctx),
                             name=f"train {preset}")
    except CvcoreError as err:
        st.session_state["trn_submit_error"] = str(err)
        return
    st.session_state[META_KEY][job.id] = {"config": config, "title": f"{preset} on {DATASET_TITLES[used]}"}
    st.session_state[JOB_KEY] = job.id


st.button("Train", type="primary", icon=":material/play_arrow:", key="trn_train", on_click=start_training,
          disabled=not trainable or active is not None,
          help="Runs in the background: you can keep using the page, and other people's sessions are not blocked.")
if st.session_state.get("trn_submit_error"):
    st.error(st.session_state.pop("trn_submit_error"))

# ============================================================================ 4. live training
job = manager.get(st.session_state[JOB_KEY]) if st.session_state.get(JOB_KEY) else None


@st.fragment(run_every=1.0 if job is not None and job.active else None)
def live_training():
    current = manager.get(st.session_state[JOB_KEY]) if st.session_state.get(JOB_KEY) else None
    if current is None:
        return
    p = current.progress or {}
    if current.status == "queued":
        st.info(f"Queued behind other sessions' training: position {current.queue_position()}. "
                "It starts by itself.", icon=":material/hourglass_top:")
    elif current.active:
        done, label = describe_progress(p)
        st.progress(done, text=label)
        st.button("Stop", icon=":material/stop:", key="trn_stop", on_click=current.stop,
                  help="Ends the run cleanly within a batch (a chunk in fast mode) and keeps its weights.")
    history = p.get("history") or {}
    if any(history.values()):
        c1, c2 = st.columns(2)
        c1.plotly_chart(plots.learning_curves({"this run": history}, "loss"), key="trn_live_loss")
        c2.plotly_chart(plots.learning_curves({"this run": history}, "accuracy"), key="trn_live_acc")
    if current.status == "failed":
        st.error(f"Training failed: {current.error}", icon=":material/error:")
    elif not current.active:
        record_finished(current)
        st.session_state.pop(JOB_KEY, None)
        st.rerun()  # the whole page: the new run joins the history below


with st.container():  # the polling fragment in a container of its own: its reruns never shift what follows
    live_training()

# ============================================================================ 5. runs
runs = st.session_state[RUNS_KEY]


def load_model_view():
    """A .keras model from a file becomes a run of its own: evaluated here, never trained here."""
    up = st.file_uploader("A .keras model (28x28x1 input, one output per class)", type=["keras"],
                          key="trn_upload", help="Loaded in Keras' safe mode: a file that would run code is refused.")
    if up is None or not st.button("Add it as a run", key="trn_add_upload", icon=":material/add:"):
        return
    try:
        loaded = saving.load_model_bytes(up.getvalue())
        ev_loaded = evaluation.evaluate(loaded, *data[1])
    except CvcoreError as err:
        show_error(err)
        return
    number = len(runs) + 1
    runs.append({"id": uuid.uuid4().hex, "job": None, "number": number, "label": f"Run {number}", "title": f"uploaded {up.name}",
                 "config": None, "dataset": used, "history": {}, "stopped": False, "seconds": None,
                 "model": loaded, "evaluation": ev_loaded})
    st.rerun()


with st.expander("Load a .keras model as a run", icon=":material/upload_file:", expanded=not runs):
    load_model_view()
if not runs:
    st.info("Train a model, or load one, to see its curves, compare runs and look inside it.",
            icon=":material/school:")
    st.stop()

st.subheader("4 · Runs, side by side", divider="gray")
NOT_TRAINED_HERE = "uploaded: not trained here"
table, diagnoses = [], {}
for r in runs:
    h, cfg = r["history"], r["config"]
    diagnosis = diagnoses[r["label"]] = evaluation.diagnose_fit(h) if cfg is not None else None
    table.append({  # None where a value does not apply: shown as an empty cell
        "run": r["label"], "model": r["title"], "images": cfg.n_train if cfg else None,
        "optimizer": describe_optimizer(cfg.optimizer) if cfg else None,
        "epochs": len(h.get("loss", [])) if cfg else None, "train acc": (h.get("accuracy") or [None])[-1],
        "val acc": (h.get("val_accuracy") or [None])[-1],
        "test acc": r["evaluation"].accuracy if r["evaluation"] is not None else None,
        "verdict": (diagnosis.verdict + (" (stopped)" if r["stopped"] else "")) if diagnosis else NOT_TRAINED_HERE,
        "seconds": round(r["seconds"], 1) if r["seconds"] is not None else None,
    })
st.dataframe(table, hide_index=True, width="stretch", key="trn_runs_table", placeholder="",
             column_config={c: st.column_config.NumberColumn(format="%.4f") for c in ("train acc", "val acc", "test acc")})
trained = [r for r in runs if r["config"] is not None]  # a model loaded from a file has no curves to compare
labels = [r["label"] for r in trained]
if not trained:
    st.caption("Runs trained here can be compared here, with their curves; a loaded model has none.")
else:
    # Keyed by the number of runs: a new run joins the comparison beside the one before it.
    chosen = st.multiselect("Compare", labels, default=labels[-2:], key=f"trn_compare_{len(labels)}",
                            help="Solid: training. Dashed: validation. Validation above training means "
                                 "underfitting; a gap that widens as training goes on means overfitting.")
    if chosen:
        picked = {r["label"]: r["history"] for r in trained if r["label"] in chosen}
        c1, c2 = st.columns(2)
        c1.plotly_chart(plots.learning_curves(picked, "loss"), key="trn_cmp_loss")
        c2.plotly_chart(plots.learning_curves(picked, "accuracy"), key="trn_cmp_acc")
        for r in trained:
            if r["label"] in chosen:
                d = diagnoses[r["label"]]
                st.markdown(f"**{r['label']}: {d.verdict}.** {d.reason}")

# ============================================================================ 6. one run
st.subheader("5 · Inside one run", divider="gray")
with_model = [r for r in runs if r["model"] is not None]
pick = st.selectbox("Run", [r["label"] for r in with_model], index=len(with_model) - 1, key="trn_eval_run")
run = next(r for r in with_model if r["label"] == pick)
model, ev = run["model"], run["evaluation"]
# The run's own test set, whatever data set is selected above now.
(_, (x_test, y_test), names), _, _ = dataset(run["dataset"])
m1, m2, m3 = st.columns(3)
m1.metric("Test accuracy", f"{ev.accuracy:.4f}", help=f"On all {len(ev.predicted):,} test images.")
m2.metric("Test loss", f"{ev.loss:.4f}")
m3.metric("Mistakes", f"{len(ev.wrong):,}")


def confusion_view():
    st.plotly_chart(plots.confusion(ev.confusion, names), key="trn_confusion")
    st.caption("Rows: the true class. Columns: what the model said. The diagonal is right; the rest shows "
               "which classes it confuses.")


def predictions_view():
    start = int(st.number_input("First test image", 0, len(x_test) - 16, 0, step=16, key="trn_pred_start"))
    idx = list(range(start, start + 16))
    titles = [f"#{i}: {names[ev.predicted[i]]} ({ev.proba[i, ev.predicted[i]]:.2f})"
              + ("" if ev.predicted[i] == y_test[i] else " ✗") for i in idx]
    st.plotly_chart(plots.map_grid([x_test[i] for i in idx], titles, columns=8, row_height=150,
                                   diverging=False, colorbars=False), key="trn_preds")
    st.caption("Each image with the predicted class and its probability; ✗ marks a mistake.")


def mistakes_view():
    worst = ev.wrong[:24]
    if not len(worst):
        st.success("No mistakes on the test set.")
        return
    titles = [f"#{i}: {names[y_test[i]]} → {names[ev.predicted[i]]} ({ev.proba[i, ev.predicted[i]]:.2f})"
              for i in worst]
    st.plotly_chart(plots.map_grid([x_test[i] for i in worst], titles, columns=6, row_height=170,
                                   diverging=False, colorbars=False), key="trn_wrong")
    st.caption("The most confident mistakes first: true class → predicted (probability).")


def show_activations(image, key: str):
    names_all = layer_names(model)
    acts = activations(model, image, names_all)
    for layer in names_all:
        a = acts[layer]
        if a.ndim == 3:
            shown = min(a.shape[2], 16)
            st.markdown(f"**{layer}** · {' x '.join(map(str, a.shape))} · "
                        f"{blank_fraction(a):.0%} of the maps blank for this image"
                        + (f" (first {shown} of {a.shape[2]} shown)" if shown < a.shape[2] else ""))
            st.plotly_chart(plots.map_grid([a[:, :, c] for c in range(shown)], [f"{c}" for c in range(shown)],
                                           columns=8, row_height=120, colorbars=False), key=f"{key}_{layer}")
        else:
            st.markdown(f"**{layer}** · {a.shape[0]} values")
            st.plotly_chart(plots.heatmap(a[None, :], height=90, colorbar=False), key=f"{key}_{layer}")


def activations_view():
    i = int(st.number_input("Test image", 0, len(x_test) - 1, 0, key="trn_act_index"))
    c1, c2 = st.columns([1, 3])
    c1.plotly_chart(plots.image(x_test[i], f"#{i}: true {names[y_test[i]]}", height=200), key="trn_act_img")
    c2.plotly_chart(plots.probability_bars(ev.proba[i], names, title="Predicted probabilities"), key="trn_act_p")
    show_activations(x_test[i], "trn_act")


def draw_view():
    c1, c2 = st.columns([1, 2])
    with c1:
        st.caption("Draw a digit (or a garment), white on black; it is shrunk to 28x28.")
        digit = drawn_digit("trn_canvas")
    if digit is None:
        c2.info("Draw on the canvas: the prediction and the activations follow your strokes.")
        return
    proba = evaluation.predict_proba(model, digit[None])[0]
    c2.plotly_chart(plots.probability_bars(proba, names, title=f"Prediction: {names[int(proba.argmax())]}"),
                    key="trn_draw_p")
    show_activations(digit, "trn_draw")


def files_view():
    cfg = run["config"]
    if run.get("keras_bytes") is None:  # serialised once per run, not on every rerun of this view
        run["keras_bytes"] = saving.model_to_bytes(model)
    st.download_button("Download the model (.keras)", run["keras_bytes"], f"{run['label']}.keras",
                       mime="application/zip", key="trn_dl_model", icon=":material/save:")
    if cfg is None:
        st.caption("This model was loaded from a file: there is no training script to export.")
        return
    script = export.training_script(cfg.spec, dataset=cfg.dataset, n_train=cfg.n_train, n_val=cfg.n_val,
                                    optimizer=cfg.optimizer, epochs=cfg.epochs, batch_size=cfg.batch_size,
                                    seed=cfg.seed, fast=cfg.fast, title=f"{run['label']}: {run['title']}")
    st.download_button("Export as a Keras script (.py)", script, f"{run['label'].replace(' ', '_')}.py",
                       mime="text/x-python", key="trn_dl_script", icon=":material/code:")
    with st.expander("The script"):
        st.code(script, language="python")


views = {"Confusion matrix": confusion_view, "Predictions": predictions_view, "Mistakes": mistakes_view,
         "Activations": activations_view, "Draw": draw_view, "Save, export": files_view}
for view_name, tab in zip(views, st.tabs(list(views), key="trn_view", on_change="rerun")):
    if tab.open:
        with tab:
            views[view_name]()

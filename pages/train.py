"""Train a ConvNet: build a layer stack, train it live, compare runs, look inside.

Reads top-down: data, model, optimizer, training (a background job the page
polls, so it survives clicks and never blocks other sessions), runs compared
side by side, then one run evaluated. Runs live in the user's workspace on
disk: a reload or a server restart keeps them. All numerics are cvcore's.
"""
import json

import streamlit as st

from cvcore import evaluation, export, jobs, models, saving
from cvcore.data import DATASET_TITLES, DATASETS
from cvcore.errors import CvcoreError
from cvcore.runs import RunConfig, save_evaluation
from cvcore.training import describe_progress
from cvcore.visualize import activations, blank_fraction, layer_names
from cvcore.workspace import QuotaExceededError
from ui import plots
from ui.common import dataset, drawn_digit, show_error, wide_layout
from ui.diagram import model_dot
from ui.jobs import job_view, live_learning_curves, page_job, room_caption, run_ended
from ui.model_builder import LAYERS_KEY, layer_stack_editor, load_stack
from ui.runs import STATUS_TEXT, manage_run, quota_error, run_evaluation, run_model
from ui.workspace import current_workspace

JOB_KEY = "trn_job_id"
RUN_KINDS = ("train", "upload")  # the runs this page lists: trained here, or loaded from a .keras file
JOB_PREFIX = "train "  # a training job's name: how a reloaded page finds its workspace's running job
DEFAULT_PRESET = "Basic CNN (6 and 12 filters)"
INPUT_SHAPE = [28, 28, 1]

wide_layout()
ws = current_workspace()
manager = jobs.default_manager()
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


def next_name() -> str:
    """'Run N', one past the highest of this workspace's runs so named."""
    numbers = [int(r.name[4:]) for r in ws.runs(RUN_KINDS) if r.name.startswith("Run ") and r.name[4:].isdigit()]
    return f"Run {max(numbers, default=0) + 1}"


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

own, others, room = page_job(manager, ws.id, lambda job: job.name.startswith(JOB_PREFIX))
if own is not None and JOB_KEY not in st.session_state:
    st.session_state[JOB_KEY] = own.id  # a reload, or a second tab: follow the workspace's training run
config = RunConfig(spec=spec, dataset=used, n_train=int(n_train), n_val=int(n_val), optimizer=optimizer,
                   epochs=epochs, batch_size=int(batch_size), fast=fast, seed=seed)


def start_training() -> None:
    title, name = f"{preset} on {DATASET_TITLES[used]}", next_name()
    try:
        ws.ensure_room()
        job = manager.submit(ws.id, "cvcore.runs:train_job",
                             {"workspace": ws.ref(), "config": config.as_dict(), "name": name, "title": title},
                             name=JOB_PREFIX + preset, kind="train")
    except CvcoreError as err:
        st.session_state["trn_submit_error"] = err
        return
    st.session_state[JOB_KEY] = job.id


st.button("Train", type="primary", icon=":material/play_arrow:", key="trn_train", on_click=start_training,
          disabled=not trainable or own is not None or not room,
          help="Runs in the background: you can keep using the page, and other people's sessions are not blocked.")
if own is None and others:
    st.caption(room_caption(manager, others, room))
submit_error = st.session_state.pop("trn_submit_error", None)
if isinstance(submit_error, QuotaExceededError):
    quota_error(ws, submit_error, "trn")
elif submit_error is not None:
    st.error(str(submit_error), icon=":material/error:")

# ============================================================================ 4. live training
job = manager.get(st.session_state[JOB_KEY]) if st.session_state.get(JOB_KEY) else None


@st.fragment(run_every=1.0 if job is not None and job.active else None)
def live_training():
    job_view(manager.get(st.session_state[JOB_KEY]) if st.session_state.get(JOB_KEY) else None, key="trn",
             describe=describe_progress, on_end=run_ended(JOB_KEY, "trn_submit_error"),
             curves=live_learning_curves("trn"),
             stop_help="Ends the run cleanly within a batch (a chunk in fast mode) and keeps its weights.")


with st.container():  # the polling fragment in a container of its own: its reruns never shift what follows
    live_training()

# ============================================================================ 5. runs
runs = ws.runs(RUN_KINDS)
for problem in ws.problems():
    st.warning(f"A run in your workspace could not be read and is skipped ({problem}).", icon=":material/broken_image:")


def load_model_view():
    """A .keras model from a file becomes a run of its own: evaluated here, never trained here."""
    up = st.file_uploader("A .keras model (28x28x1 input, one output per class)", type=["keras"],
                          key="trn_upload", help="Loaded in Keras' safe mode: a file that would run code is refused.")
    if up is None or not st.button("Add it as a run", key="trn_add_upload", icon=":material/add:"):
        return
    try:
        ws.ensure_room(up.size)
        loaded = saving.load_model_bytes(up.getvalue())
        ev_loaded = evaluation.evaluate(loaded, *data[1])
        rec = ws.new_run("upload", name=next_name(), title=f"uploaded {up.name}",
                         data={"dataset": used, "test": f"all {len(data[1][1])} test images"})
        ws.save_model(rec.id, loaded)
        save_evaluation(ws, rec, ev_loaded)
        rec.has_model, rec.status = True, "finished"
        ws.save_run(rec)
    except QuotaExceededError as err:
        quota_error(ws, err, "trn_upload")
        return
    except CvcoreError as err:
        show_error(err)
        return
    st.rerun()


with st.expander("Load a .keras model as a run", icon=":material/upload_file:", expanded=not runs):
    load_model_view()
if not runs:
    st.info("Train a model, or load one, to see its curves, compare runs and look inside it.",
            icon=":material/school:")
    st.stop()

st.subheader("4 · Runs, side by side", divider="gray")
NOT_TRAINED_HERE = "uploaded: not trained here"
statuses = {r.id: ws.status(r) for r in runs}
table, diagnoses = [], {}
for r in runs:
    h, cfg = r.history, (RunConfig(**r.config) if r.kind == "train" else None)
    diagnosis = diagnoses[r.id] = evaluation.diagnose_fit(h) if cfg is not None and h.get("loss") else None
    status = STATUS_TEXT[statuses[r.id]]
    verdict = (diagnosis.verdict if diagnosis else NOT_TRAINED_HERE if cfg is None else "no epoch finished")
    table.append({  # None where a value does not apply: shown as an empty cell
        "run": r.name, "model": r.title, "images": cfg.n_train if cfg else None,
        "optimizer": describe_optimizer(cfg.optimizer) if cfg else None,
        "epochs": r.epochs_done if cfg else None, "train acc": (h.get("accuracy") or [None])[-1],
        "val acc": (h.get("val_accuracy") or [None])[-1],
        "test acc": r.evaluation["accuracy"] if r.evaluation else None,
        "verdict": verdict + (f" ({status})" if status else ""),
        "seconds": round(r.seconds, 1) if r.seconds is not None else None,
    })
st.dataframe(table, hide_index=True, width="stretch", key="trn_runs_table", placeholder="",
             column_config={c: st.column_config.NumberColumn(format="%.4f") for c in ("train acc", "val acc", "test acc")})
if any(s == "interrupted" for s in statuses.values()):
    st.caption(":material/warning: An *interrupted* run's job ended without finishing (the server stopped, or it "
               "crashed): it keeps the epochs it had saved, and its model as it was after the last of them.")
trained = [r for r in runs if r.kind == "train" and r.history.get("loss")]  # a loaded model has no curves
names_by_id = {r.id: r.name for r in runs}
if not trained:
    st.caption("Runs trained here can be compared here, with their curves; a loaded model has none.")
else:
    ids = [r.id for r in trained]
    # Keyed by the runs: a new run joins the comparison beside the one before it.
    chosen = st.multiselect("Compare", ids, default=ids[-2:], format_func=names_by_id.get,
                            key=f"trn_compare_{len(ids)}",
                            help="Solid: training. Dashed: validation. Validation above training means "
                                 "underfitting; a gap that widens as training goes on means overfitting.")
    if chosen:
        picked = {r.name: r.history for r in trained if r.id in chosen}
        c1, c2 = st.columns(2)
        c1.plotly_chart(plots.learning_curves(picked, "loss"), key="trn_cmp_loss")
        c2.plotly_chart(plots.learning_curves(picked, "accuracy"), key="trn_cmp_acc")
        for r in trained:
            if r.id in chosen:
                d = diagnoses[r.id]
                st.markdown(f"**{r.name}: {d.verdict}.** {d.reason}")

# ============================================================================ 6. one run
st.subheader("5 · Inside one run", divider="gray")
by_id = {r.id: r for r in runs}
pick = st.selectbox("Run", list(by_id), index=len(runs) - 1, format_func=lambda i: f"{by_id[i].name}: {by_id[i].title}",
                    key="trn_eval_run")
run = by_id[pick]
model, ev = run_model(ws, run), run_evaluation(ws, run)
# The run's own test set, whatever data set is selected above now.
(_, (x_test, y_test), names), _, _ = dataset(run.data.get("dataset") or run.config.get("dataset"))
if ev is None:
    if model is not None:
        st.info(f"{run.name} was not evaluated on the test set ({statuses[run.id]}); its model as saved after "
                f"epoch {run.epochs_done} can still be looked into and downloaded.", icon=":material/info:")
    elif run.status == "failed":
        st.error(f"{run.name} failed: {run.error}", icon=":material/error:")
    else:
        st.info(f"{run.name} has no model yet ({statuses[run.id]}).", icon=":material/hourglass_top:")
else:
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
    proba = ev.proba[i] if ev is not None else evaluation.predict_proba(model, x_test[i][None])[0]
    c2.plotly_chart(plots.probability_bars(proba, names, title="Predicted probabilities"), key="trn_act_p")
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


def run_script():
    """The run as a Keras script of its own, or None for a model loaded from a file."""
    if run.kind != "train":
        return None
    cfg = RunConfig(**run.config)
    return export.training_script(cfg.spec, dataset=cfg.dataset, n_train=cfg.n_train, n_val=cfg.n_val,
                                  optimizer=cfg.optimizer, epochs=cfg.epochs, batch_size=cfg.batch_size,
                                  seed=cfg.seed, fast=cfg.fast, title=f"{run.name}: {run.title}")


def files_view():
    script = run_script()
    if model is not None:
        model_file = ws.model_path(run.id)  # read when the button is pressed, not on every rerun
        st.download_button("Download the model (.keras)", model_file.read_bytes, f"{run.name}.keras",
                           mime="application/zip", key="trn_dl_model", icon=":material/save:")
    if script is None:
        st.caption("This model was loaded from a file: there is no training script to export.")
    else:
        st.download_button("Export as a Keras script (.py)", script, f"{run.name.replace(' ', '_')}.py",
                           mime="text/x-python", key="trn_dl_script", icon=":material/code:")
        with st.expander("The script"):
            st.code(script, language="python")
    st.divider()
    manage_run(ws, run, "trn", {"train.py": script} if script else None)


views = {"Confusion matrix": confusion_view, "Predictions": predictions_view, "Mistakes": mistakes_view,
         "Activations": activations_view, "Draw": draw_view, "Save, export": files_view}
# Only the views that what the run saved can fill: no evaluation (a run cut short), or no readable model.
missing = ({"Confusion matrix", "Predictions", "Mistakes"} if ev is None else set()) | (
    {"Activations", "Draw"} if model is None else set())
views = {k: v for k, v in views.items() if k not in missing}
for view_name, tab in zip(views, st.tabs(list(views), key="trn_view", on_change="rerun")):
    if tab.open:
        with tab:
            views[view_name]()

"""Transfer learning: VGG16 and friends on your own image folders, with cached features and fine-tuning.

Reads top-down: the data set (the Data page's, with its saved split, or an
offline demo), the base network and its weights, how to train (five ways,
each with its cost), then training as a background job with live curves and
Stop, the runs compared, and one run looked into. The trained models are
offered on the Visualize page. All numerics are cvcore's (cvcore.transfer,
cvcore.transfer_runs).
"""
import uuid
from pathlib import Path

import numpy as np
import streamlit as st

from cvcore import applications, jobs
from cvcore import augment as aug
from cvcore.errors import CvcoreError
from cvcore.training import describe_progress
from cvcore.transfer import flat_model
from cvcore.transfer_runs import (MODE_TITLES, MODES, TransferConfig, mode_costs, mode_params, run_transfer,
                                  transfer_summary)
from cvcore.workspace import state_dir
from ui import plots
from ui.common import show_error, wide_layout
from ui.datasets import current_dataset, demo_dataset, session_workspace, thumbnails
from ui.workspace import job_owner

RUNS_KEY, JOB_KEY, META_KEY = "tl_runs", "tl_job_id", "tl_job_meta"
AUG_RECIPE_KEY = "aug_keras_recipe"  # the Augment page's last Keras recipe
MODELS_KEPT = 4  # trained models kept per session (older runs keep their curves); VGG16 is 60 MB
SEED_ACCURACY = {"baseline": "about 54%", "frozen": "about 85%", "features": "about 85%",
                 "finetune": "better still", "scratch": "far below the pretrained base"}
MODE_HELP = {
    "baseline": "Flatten, Dense(softmax), plain SGD on the raw pixels: the sanity check before any ConvNet.",
    "frozen": "The base's weights stay as ImageNet left them; only the new head learns. Every epoch runs the whole "
              "base over every image (with augmentation, new versions each epoch).",
    "features": "The base runs once over the data set; its outputs are stored on disk and reused by later runs and "
                "sessions. The head then trains on them in seconds. No augmentation: the features are fixed.",
    "finetune": "First the head on cached features; then the top layers of the base learn too, at a much smaller "
                "learning rate, so that ImageNet's features are adjusted, not destroyed.",
    "scratch": "The same architecture, random weights, every layer trainable: the seed's weights=None experiment. "
               "Slow, and with a few hundred images it learns little.",
}

st.session_state.setdefault(RUNS_KEY, [])
st.session_state.setdefault(META_KEY, {})
manager = jobs.default_manager()

wide_layout()
st.title("Transfer learning")
st.caption("A network trained on ImageNet's 1.2 million photographs already knows edges, textures and parts. "
           "Freeze it, put a small new head on top, and train the head on your classes; cache what the base "
           "computes to train in seconds; then fine-tune its top layers.")


@st.cache_data(show_spinner="Building the model to count its parameters…", max_entries=32)
def summary_of(base: str, side: int, num_classes: int, head: str, dropout: float, finetune_layers):
    return transfer_summary(base, side, num_classes, head=head, dropout=dropout, finetune_layers=finetune_layers)


@st.cache_resource(show_spinner="Fetching the ImageNet weights into Keras' cache (once)…", ttl=300)
def imagenet_weights(name: str):
    """(path, None) or (None, why); a failure is retried after five minutes."""
    try:
        return applications.ensure_weights(name, include_top=False), None
    except CvcoreError as err:
        return None, str(err)


def gmac(macs: float) -> str:
    g = macs / 1e9
    return "none" if macs == 0 else f"{g:,.0f} GMAC" if g >= 10 else f"{g:,.2f} GMAC" if g >= 0.01 else "< 0.01 GMAC"


# ============================================================================ 1. data
st.subheader("1 · Data", divider="gray")
ds = current_dataset()
if ds is None:
    ds = demo_dataset("fashion-mnist")
    st.info(f"No data set is loaded in this session, so the offline demo is used: **{ds.name}**, written out as RGB "
            "class folders. Load your own image folders (a zip, or a server folder such as the plant seedlings) on "
            "the Data page; its validation split is used here.", icon=":material/folder_open:")
    st.page_link("pages/data.py", label="Load your image folders", icon=":material/folder_open:")
n_val_all = int(ds.validation.sum())
counts = ds.counts
largest = max((t for t, _ in counts.values()), default=0)
m = st.columns([1, 1, 1, 2])
m[0].metric("Classes", len(ds.classes))
m[1].metric("Training images", f"{len(ds) - n_val_all:,}", help="The Data page's split: never a file moved.")
m[2].metric("Validation images", f"{n_val_all:,}", help="Every run is judged on these.")
choices = [n for n in (5, 10, 20, 50, 100, 200, 500) if n < largest] + ["all"]
per_class = m[3].select_slider(
    "Training images per class, at most", choices, value="all" if largest <= 100 else min(100, choices[-2]),
    key=f"tl_per_class_{ds.fingerprint()[:8]}",
    help="Fewer images train faster (the seed used all). The first images of each class in the split are used; "
         "the validation images are always all of them.")
max_per_class = None if per_class == "all" else int(per_class)
n_train = sum(min(t, max_per_class) if max_per_class else t for t, _ in counts.values())
if n_val_all == 0:
    st.error("This data set has no validation images: set some aside on the Data page (the seed kept 12 per class), "
             "so that the runs can be judged.", icon=":material/error:")
    st.stop()
with st.expander(f"A look at {ds.name}"):
    first = [int(np.flatnonzero(ds.labels == i)[0]) for i in range(len(ds.classes)) if (ds.labels == i).any()]
    try:
        st.image(thumbnails(ds, first), caption=[ds.classes[ds.labels[i]] for i in first], width=96)
    except CvcoreError as err:
        show_error(err, "A file changed since the scan: scan the folder again on the Data page.")

# ============================================================================ 2. base
st.subheader("2 · The base network", divider="gray")
c1, c2, c3 = st.columns([1, 1, 2])
base = c1.selectbox("Base", list(applications.APPLICATIONS), key="tl_base",
                    format_func=lambda n: applications.APPLICATIONS[n]["title"],
                    help="VGG16 is the seed's: simple and large. ResNet50 and InceptionV3 are deeper; MobileNetV2 is "
                         "light, made for phones. Each gets its own preprocessing of the pixels.")
min_side = 75 if base == "inceptionv3" else 32
side = int(c2.number_input("Input size (px)", min_side, 299, max(150, min_side), step=2, key=f"tl_side_{base}",
                           help="Images are resized to this square, as flow_from_directory(target_size=(150, 150)) "
                                "did in the seed. Smaller is faster; the base's output map shrinks with it."))
weights_choice = c3.radio(
    "Weights", ["ImageNet", "Random (no pretraining)", "Upload a weights file"], key="tl_weights", horizontal=True,
    help="ImageNet weights come through Keras' cache (downloaded once on a machine with internet) or from a folder "
         "the operator configures ($CVCORE_WEIGHTS_DIR). Random weights: the seed's training from scratch.")
spec = applications.APPLICATIONS[base]
weights = None
if weights_choice == "ImageNet":
    path, why = imagenet_weights(base)
    if path is None:
        st.warning(f"{why} Until then, the base can start from random weights: the seed's \"train VGG16 from "
                   "scratch\" experiment. The modes below still run; what a pretrained base brings shows only with "
                   "ImageNet's weights.", icon=":material/cloud_off:")
        st.button("Use random weights", key="tl_use_random", icon=":material/shuffle:",
                  on_click=lambda: st.session_state.update(tl_weights="Random (no pretraining)"))
        st.stop()
    weights = "imagenet"
    c3.caption(f":material/check_circle: {path.name}")
elif weights_choice == "Upload a weights file":
    up = c3.file_uploader(f"{spec['title']}'s weights without the top (.h5)", type=["h5"], key=f"tl_weights_file_{base}",
                          help=f"Keras' file {spec['files'][1]} ({spec['mb'][1]} MB). It stays in this session's "
                               "private folder until the session ends.")
    if up is None:
        st.info(f"Upload {spec['files'][1]}, or pick ImageNet or random weights.", icon=":material/upload:")
        st.stop()
    held = st.session_state.setdefault("tl_uploaded_weights", {})
    if held.get("id") != (base, up.file_id):
        folder = Path(session_workspace().new_folder("weights"))
        target = folder / "weights.h5"
        target.write_bytes(up.getvalue())
        try:
            applications.load_application(base, weights=target, include_top=False, input_shape=(min_side, min_side, 3))
            held.update(id=(base, up.file_id), path=str(target), error=None)
        except CvcoreError as err:
            target.unlink(missing_ok=True)
            held.update(id=(base, up.file_id), path=None, error=str(err))
    if held["path"] is None:
        show_error(CvcoreError(held["error"]), f"Upload Keras' own file {spec['files'][1]}.")
        st.stop()
    weights = held["path"]
else:
    st.caption(":material/info: Random weights: the base knows nothing yet, so freezing it keeps random features. "
               "Compare with ImageNet's weights where you can get them.")

# ============================================================================ 3. how to train
st.subheader("3 · How to train", divider="gray")
mode = st.radio("Mode", MODES, format_func=MODE_TITLES.get, key="tl_mode", horizontal=True,
                help="Five steps of the chapters, cheapest first: run the baseline first, then compare.")
st.caption(MODE_HELP[mode] + f" The seed, on the plant seedlings: **{SEED_ACCURACY[mode]}** on validation.")

h1, h2, h3, h4 = st.columns(4)
head = h1.segmented_control("Head", ["flatten", "gap"], default="flatten", key="tl_head",
                            format_func={"flatten": "Flatten", "gap": "Global pooling"}.get,
                            disabled=mode == "baseline",
                            help="Flatten keeps every position of the base's output (the seed's: many parameters); "
                                 "GlobalAveragePooling2D keeps one number per channel (few parameters).") or "flatten"
dropout = float(h2.slider("Dropout", 0.0, 0.8, 0.0, 0.1, key="tl_dropout", disabled=mode == "baseline",
                          help="A Dropout layer before the Dense one: fights overfitting of a large head."))
epochs = int(h3.number_input("Epochs" if mode != "finetune" else "Epochs of the head", 1, 200,
                             5 if mode != "scratch" else 3, key=f"tl_epochs_{mode}"))
batch_size = int(h4.select_slider("Batch size", [8, 16, 32, 64, 128], value=32, key="tl_batch"))

o1, o2, o3, o4 = st.columns(4)
default_lr = 0.01 if mode == "baseline" else 0.001
lr = float(o1.number_input("Learning rate" + (" (SGD)" if mode == "baseline" else " (Adam)"), 1e-6, 1.0, default_lr,
                           format="%.5f", key=f"tl_lr_{mode}",
                           help="The baseline uses plain SGD, as the seed did; the other modes Adam."))
optimizer = {"name": "sgd" if mode == "baseline" else "adam", "learning_rate": lr}
augmentable = mode in ("frozen", "finetune", "scratch")
augment = o2.toggle("Augmentation", key="tl_augment", disabled=not augmentable,
                    help="Augment the training images: the Augment page's Keras recipe (or the chapters' one), "
                         "applied to every training batch in "
                         "the tf.data pipeline. Not with cached features: those are computed once.")
seed = int(o3.number_input("Seed", 0, 2**31 - 1, 0, key="tl_seed", help="The same seed gives the same run."))
recipe = None
if augment and augmentable:
    recipe = st.session_state.get(AUG_RECIPE_KEY) or aug.DEFAULT_RECIPES["keras"]
    o4.caption(("The Augment page's recipe" if AUG_RECIPE_KEY in st.session_state else "The chapters' recipe (edit "
                "it on the Augment page)") + ": " + ", ".join(
        f"{k} {v}" for k, v in recipe.items() if k not in ("engine", "rescale", "fill_mode", "cval") and v))
    st.page_link("pages/augment.py", label="Edit the recipe on the Augment page", icon=":material/auto_awesome_motion:")

finetune_layers, finetune_epochs, finetune_lr = None, 3, 1e-5
try:
    summary = summary_of(base, side, len(ds.classes), head, dropout, None)
except CvcoreError as err:
    show_error(err, "Pick another input size or base.")
    st.stop()
names = summary["base_layers"]
if mode == "finetune":
    f1, f2, f3 = st.columns(3)
    finetune_layers = int(f1.number_input(
        "Layers of the base to unfreeze (from the top)", 1, len(names), summary["default_finetune_layers"],
        key=f"tl_ft_layers_{base}",
        help=f"{spec['title']}'s top block by default (VGG16: block5, as in the seed). BatchNormalization layers "
             "stay frozen, as Keras advises."))
    finetune_epochs = int(f2.number_input("Epochs of fine-tuning", 1, 100, 3, key="tl_ft_epochs"))
    finetune_lr = float(f3.number_input("Fine-tuning learning rate (Adam)", 1e-7, 1e-2, 1e-5, format="%.6f",
                                        key="tl_ft_lr", help="Small, so that ImageNet's features are adjusted, "
                                                             "not wiped out by the large errors of the first steps."))
    summary = summary_of(base, side, len(ds.classes), head, dropout, finetune_layers)
    st.caption(f"Unfrozen: {names[-finetune_layers]} … {names[-1]} ({finetune_layers} layers).")

# The model summary: Keras' own counts.
params = mode_params(summary, side, len(ds.classes))
counts_for = None if mode == "baseline" else params[mode]
if counts_for is None:
    st.metric("Parameters (all trainable)", f"{params['baseline']['total']:,}",
              help=f"{side} x {side} x 3 pixels x {len(ds.classes)} classes + {len(ds.classes)} biases.")
else:
    p1, p2, p3, _ = st.columns([1, 1, 1, 1])
    p1.metric("Total parameters", f"{counts_for['total']:,}", help="Keras' own count: model.count_params().")
    p2.metric("Trainable", f"{counts_for['trainable']:,}")
    p3.metric("Non-trainable", f"{counts_for['non_trainable']:,}")
left, right = st.columns([2, 3], gap="medium")
with left:
    if counts_for is not None:
        st.caption(f"{spec['title']} alone, without its top, at {side} x {side}: **{summary['base']['total']:,}** "
                   f"parameters; its output is {' x '.join(map(str, summary['feature_shape']))} per image. The seed: "
                   "VGG16 at 150 x 150 has 14,714,688; with Flatten and Dense(12), 14,813,004, of which 98,316 "
                   "trainable.")
with right:
    if counts_for is not None:
        rows = [dict(r) for r in summary["rows"]]
        for r in rows:  # the base's trainability in this mode
            if r["layer"] == base:
                r["trainable"] = mode in ("finetune", "scratch")
        st.dataframe(rows, hide_index=True, width="stretch", key="tl_summary",
                     column_config={"params": st.column_config.NumberColumn(format="localized")})

costs = mode_costs(summary, side, len(ds.classes), n_train, n_val_all)
cost_rows = [{"mode": MODE_TITLES[m_], "before the first epoch": gmac(costs[m_]["once"]),
              "each epoch": gmac(costs[m_]["per_epoch"]),
              "trainable parameters": params[m_]["trainable"],
              "chosen": "◀" if m_ == mode else ""} for m_ in MODES]
st.markdown(f"**What each mode costs** on {n_train:,} training and {n_val_all:,} validation images at "
            f"{side} x {side} (multiply-accumulates; a training step costs about three forward passes):")
st.dataframe(cost_rows, hide_index=True, width="stretch", key="tl_costs",
             column_config={"trainable parameters": st.column_config.NumberColumn(format="localized")})
st.caption("Cached features pay for the base once (and never again for the same files, size and weights); then an "
           "epoch is only the head. The seed measured 3 s against 33 s per epoch; the runs below show this machine's "
           "seconds per epoch.")

# ============================================================================ 4. train
config = TransferConfig(mode=mode, base=base, image_size=side, weights=weights, head=head, dropout=dropout,
                        epochs=epochs, batch_size=batch_size, optimizer=optimizer, augment=recipe,
                        finetune_layers=int(finetune_layers or summary["default_finetune_layers"]),
                        finetune_epochs=finetune_epochs, finetune_learning_rate=finetune_lr,
                        max_per_class=max_per_class, seed=seed)
active = manager.active_job(job_owner())
cache_dir = state_dir() / "features"


def start() -> None:
    try:
        job = manager.submit(job_owner(),
                             lambda ctx: run_transfer(config, ds, ctx, cache_dir=cache_dir),
                             name=f"transfer {mode}")
    except CvcoreError as err:
        st.session_state["tl_submit_error"] = str(err)
        return
    title = MODE_TITLES[mode].split(":")[0] if mode == "baseline" else f"{spec['title']}: {MODE_TITLES[mode]}"
    st.session_state[META_KEY][job.id] = {"config": config, "title": title, "dataset": ds.name,
                                          "weights": weights_choice}
    st.session_state[JOB_KEY] = job.id


c1, c2 = st.columns([1, 4], vertical_alignment="center")
c1.button("Train", type="primary", icon=":material/play_arrow:", key="tl_train", on_click=start,
          disabled=active is not None,
          help="Runs in the background: the page stays usable and other sessions are not blocked.")
if active is not None and active.id != st.session_state.get(JOB_KEY):
    c2.caption(f"Another job of this session is running ({active.name}); it must end first.")
if st.session_state.get("tl_submit_error"):
    st.error(st.session_state.pop("tl_submit_error"), icon=":material/error:")


def record_finished(job) -> None:
    runs = st.session_state[RUNS_KEY]
    if any(r["job"] == job.id for r in runs):
        return
    meta = st.session_state[META_KEY].pop(job.id)
    result = job.result
    number = len(runs) + 1
    epochs_run = len(result.history.get("loss", []))
    model = flat_model(result.model) if result.model is not None and result.config.mode != "baseline" else result.model
    runs.append({
        "id": uuid.uuid4().hex, "job": job.id, "number": number, "label": f"Transfer {number}", "title": meta["title"], "config": meta["config"],
        "dataset": meta["dataset"], "weights": meta["weights"], "history": result.history, "phases": result.phases,
        "stopped": result.stopped, "seconds": result.seconds, "model": model if result.evaluation is not None else None,
        "evaluation": result.evaluation, "class_names": result.class_names,
        "test_data": (result.val_images, result.val_labels), "extraction": result.extraction, "params": result.params,
        "train_images": result.train_images, "epochs_run": epochs_run, "epoch_seconds": result.epoch_seconds,
    })
    for old in runs[:-MODELS_KEPT]:  # memory: the newest models, every run's curves and scores
        old["model"] = None


job = manager.get(st.session_state[JOB_KEY]) if st.session_state.get(JOB_KEY) else None


@st.fragment(run_every=1.0 if job is not None and job.active else None)
def live():
    current = manager.get(st.session_state[JOB_KEY]) if st.session_state.get(JOB_KEY) else None
    if current is None:
        return
    p = current.progress or {}
    if current.status == "queued":
        st.info(f"Queued behind other sessions' jobs: position {current.queue_position()}. It starts by itself.",
                icon=":material/hourglass_top:")
    elif current.active:
        frac, text = describe_progress(p)
        b1, b2 = st.columns([6, 1], vertical_alignment="bottom")
        b1.progress(min(max(frac, 0.0), 1.0), text=text)
        b2.button("Stop", icon=":material/stop:", key="tl_stop", on_click=current.stop,
                  help="Ends the run within a batch and keeps what it learned so far (a stopped feature "
                       "extraction caches nothing).")
    history = p.get("history") or {}
    if any(history.values()):
        c1, c2 = st.columns(2)
        c1.plotly_chart(plots.learning_curves({"this run": history}, "loss", phases=p.get("phases")), key="tl_live_loss")
        c2.plotly_chart(plots.learning_curves({"this run": history}, "accuracy", phases=p.get("phases")),
                        key="tl_live_acc")
    if current.status == "failed":
        st.error(f"Training failed: {current.error}", icon=":material/error:")
    elif not current.active:
        record_finished(current)
        st.session_state.pop(JOB_KEY, None)
        st.rerun()


with st.container():
    live()

# ============================================================================ 5. runs
runs = st.session_state[RUNS_KEY]
if not runs:
    st.info("Train the baseline first: it tells how hard the data set is. Then a frozen base, cached features, "
            "fine-tuning, and compare.", icon=":material/school:")
    st.stop()

st.subheader("4 · Runs, side by side", divider="gray")
table = []
for r in runs:
    h, cfg = r["history"], r["config"]
    per_epoch = float(np.median(r["epoch_seconds"][:r["phases"][0][1]])) if r["phases"] and r["phases"][0][1] else None
    table.append({
        "run": r["label"], "model": r["title"], "data": r["dataset"], "size": cfg.image_size,
        "weights": "—" if cfg.mode == "baseline" else "random" if cfg.mode == "scratch" else r["weights"],
        "train images": r["train_images"], "epochs": r["epochs_run"],
        "train acc": (h.get("accuracy") or [None])[-1],
        "val acc": r["evaluation"].accuracy if r["evaluation"] is not None else None,
        "features": ("from the cache" if r["extraction"]["cached"] else f"computed in {r['extraction']['seconds']:.0f} s")
        if r["extraction"] else "",
        "s / epoch": round(per_epoch, 3) if per_epoch else None, "seconds": round(r["seconds"], 1),
        "stopped": "stopped" if r["stopped"] else "",
    })
st.dataframe(table, hide_index=True, width="stretch", key="tl_runs_table", placeholder="",
             column_config={c: st.column_config.NumberColumn(format="%.4f") for c in ("train acc", "val acc")})
baselines = [r for r in runs if r["config"].mode == "baseline" and r["evaluation"] is not None]
if baselines:
    b = baselines[-1]
    chance = 1 / len(b["class_names"])
    acc = b["evaluation"].accuracy
    verdict = ("Well above that: the raw pixels already tell much of the answer (colour, brightness, "
               "background), so read a ConvNet's score against this one, not against chance"
               if acc >= 1.5 * chance else
               "Hardly better: the pixels alone do not give the answer away here, so what a ConvNet scores it earns")
    st.info(f"**The baseline ({b['label']}) reached {acc:.0%}** on validation; guessing gets {chance:.0%}. "
            f"{verdict}. The seed's lesson: if a trivial model does well, the data gives the answer away. Its "
            "logistic regression reached about 54% on the plant seedlings (12 classes); VGG16 with a new head "
            "about 85%.", icon=":material/lightbulb:")
labels = [r["label"] for r in runs]
chosen = st.multiselect("Compare", labels, default=labels[-2:], key=f"tl_compare_{len(labels)}",
                        help="Solid: training. Dashed: validation. A dotted line marks where fine-tuning begins.")
if chosen:
    picked = {r["label"]: r["history"] for r in runs if r["label"] in chosen}
    phased = [r for r in runs if r["label"] in chosen and len(r["phases"]) > 1]
    phases = phased[0]["phases"] if len(phased) == 1 else None  # where fine-tuning begins
    c1, c2 = st.columns(2)
    c1.plotly_chart(plots.learning_curves(picked, "loss", phases=phases), key="tl_cmp_loss")
    c2.plotly_chart(plots.learning_curves(picked, "accuracy", phases=phases), key="tl_cmp_acc")

# ============================================================================ 6. one run
st.subheader("5 · Inside one run", divider="gray")
judged = [r for r in runs if r["evaluation"] is not None]
if not judged:
    st.info("The runs so far were stopped before they learned anything.", icon=":material/info:")
    st.stop()
pick = st.selectbox("Run", [r["label"] for r in judged], index=len(judged) - 1, key=f"tl_eval_run_{len(judged)}",
                    format_func=lambda lb: f"{lb}: {next(r['title'] for r in judged if r['label'] == lb)}")
run = next(r for r in judged if r["label"] == pick)
ev, names_ = run["evaluation"], run["class_names"]
x_val, y_val = run["test_data"]
m1, m2, m3, m4 = st.columns(4)
m1.metric("Validation accuracy", f"{ev.accuracy:.1%}", help=f"On all {len(y_val):,} validation images.")
m2.metric("Validation loss", f"{ev.loss:.4f}")
m3.metric("Mistakes", f"{len(ev.wrong):,}")
if run["params"]:
    m4.metric("Trainable parameters", f"{run['params']['trainable']:,}", help=f"Of {run['params']['total']:,} in all.")
if run["model"] is not None:
    st.page_link("pages/visualize.py", label="Look inside this model: Grad-CAM on your classes",
                 icon=":material/visibility:")
    st.caption("The Visualize page lists it under *Trained here*, with these validation images as its test images.")


def confusion_view():
    st.plotly_chart(plots.confusion(ev.confusion, names_), key="tl_confusion")
    st.caption("Rows: the true class. Columns: what the model said. The diagonal is right.")


def predictions_view():
    n = len(y_val)
    start = int(st.number_input("First validation image", 0, max(n - 1, 0), 0, step=16, key="tl_pred_start"))
    idx = list(range(start, min(start + 16, n)))
    titles = [f"{names_[ev.predicted[i]]} ({ev.proba[i, ev.predicted[i]]:.2f})"
              + ("" if ev.predicted[i] == y_val[i] else f" ✗ {names_[y_val[i]]}") for i in idx]
    st.plotly_chart(plots.map_grid([x_val[i] for i in idx], titles, columns=8, row_height=170, diverging=False,
                                   colorbars=False), key="tl_preds")
    st.caption("The predicted class and its probability; ✗ marks a mistake and names the true class.")
    i = int(st.selectbox("Probabilities of one image", idx, key="tl_pred_one", format_func=lambda j: f"#{j}"))
    c1, c2 = st.columns([1, 3])
    c1.plotly_chart(plots.image(x_val[i], f"true: {names_[y_val[i]]}", height=220), key="tl_pred_img")
    c2.plotly_chart(plots.probability_bars(ev.proba[i], names_, height=max(220, 22 * len(names_))),
                    key="tl_pred_bars")


def mistakes_view():
    worst = ev.wrong[:24]
    if not len(worst):
        st.success("No mistakes on the validation images.", icon=":material/check_circle:")
        return
    titles = [f"{names_[y_val[i]]} → {names_[ev.predicted[i]]} ({ev.proba[i, ev.predicted[i]]:.2f})" for i in worst]
    st.plotly_chart(plots.map_grid([x_val[i] for i in worst], titles, columns=6, row_height=190, diverging=False,
                                   colorbars=False), key="tl_wrong")
    st.caption("The most confident mistakes first: true class → predicted (probability).")


views = {"Confusion matrix": confusion_view, "Predictions": predictions_view, "Mistakes": mistakes_view}
for view_name, tab in zip(views, st.tabs(list(views), key="tl_view", on_change="rerun")):
    if tab.open:
        with tab:
            views[view_name]()

with st.expander("The same in Keras"):
    st.markdown("The seed, in Keras 2, read the folders with `ImageDataGenerator(...).flow_from_directory(folder, "
                "target_size=(150, 150))`, trained with `fit_generator` and cached features with `predict_generator`; "
                "Keras 3 removed all three. Today:")
    st.code('''import keras, tensorflow as tf

train_ds = keras.utils.image_dataset_from_directory("seedlings/train", image_size=(150, 150), batch_size=32)
base = keras.applications.VGG16(weights="imagenet", include_top=False, input_shape=(150, 150, 3))
base.trainable = False                                   # frozen: 14,714,688 non-trainable parameters

inputs = keras.Input((150, 150, 3))
x = keras.applications.vgg16.preprocess_input(inputs)    # each base has its own preprocessing
x = base(x, training=False)                              # BatchNormalization stays in inference mode
x = keras.layers.Flatten()(x)
outputs = keras.layers.Dense(12, activation="softmax")(x)
model = keras.Model(inputs, outputs)                     # 14,813,004 parameters, 98,316 trainable
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_ds.cache().prefetch(tf.data.AUTOTUNE), epochs=5)

# Fine-tuning: the top block learns too, slowly.
base.trainable = True
for layer in base.layers:
    layer.trainable = layer.name.startswith("block5")
model.compile(keras.optimizers.Adam(1e-5), "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_ds, epochs=3)''', language="python")

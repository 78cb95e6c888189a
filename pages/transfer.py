"""Transfer learning: VGG16 and friends on your own image folders, with cached features and fine-tuning.

Reads top-down: the data set (the Data page's, with its saved split, or an
offline demo), the base network and its weights, how to train (five ways,
each with its cost), then training as a background job with live curves and
Stop, the runs compared, and one run looked into. The trained models are
offered on the Visualize page. All numerics are cvcore's (cvcore.transfer,
cvcore.transfer_runs).
"""
from pathlib import Path

import numpy as np
import streamlit as st

from cvcore import applications, jobs
from cvcore import augment as aug
from cvcore.errors import CvcoreError
from cvcore.training import describe_progress
from cvcore.transfer_runs import (MODE_TITLES, MODES, TransferConfig, mode_costs, mode_params, config_dict,
                                  transfer_summary)
from cvcore.workspace import QuotaExceededError, state_dir
from ui import plots
from ui.common import show_error, wide_layout
from ui.datasets import current_dataset, demo_dataset, session_workspace, thumbnails
from ui.jobs import job_view, live_learning_curves, page_job, room_caption, run_ended
from ui.runs import STATUS_TEXT, manage_run, quota_error, run_arrays, run_evaluation

JOB_KEY = "tl_job_id"
JOB_PREFIX = "transfer "  # a transfer job's name: how a reloaded page finds its workspace's running job
AUG_RECIPE_KEY = "aug_keras_recipe"  # the Augment page's last Keras recipe
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

wide_layout()
ws = session_workspace()
manager = jobs.default_manager()
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
    st.info(f"No data set is loaded in your workspace, so the offline demo is used: **{ds.name}**, written out as RGB "
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
WEIGHT_CHOICES = ["ImageNet", "Random (no pretraining)", "Upload a weights file"]
# The weights chosen last in this workspace, so that a reload comes back to the same page (and its runs) even
# where ImageNet's weights cannot be had.
remembered = ws.read_json("transfer-choices", {}) or {}
if "tl_weights" not in st.session_state and remembered.get("weights") in WEIGHT_CHOICES[:2]:
    st.session_state["tl_weights"] = remembered["weights"]
weights_choice = c3.radio(
    "Weights", WEIGHT_CHOICES, key="tl_weights", horizontal=True,
    help="ImageNet weights come through Keras' cache (downloaded once on a machine with internet) or from a folder "
         "the operator configures ($CVCORE_WEIGHTS_DIR). Random weights: the seed's training from scratch.")
if remembered.get("weights") != weights_choice:
    ws.write_json("transfer-choices", {**remembered, "weights": weights_choice})
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
                          help=f"Keras' file {spec['files'][1]} ({spec['mb'][1]} MB). It is kept in your "
                               "workspace's private folder.")
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
own, others, room = page_job(manager, ws.id, lambda job: job.name.startswith(JOB_PREFIX))
if own is not None and JOB_KEY not in st.session_state:
    st.session_state[JOB_KEY] = own.id  # a reload, or a second tab: follow the workspace's transfer run
cache_dir = state_dir() / "features"


def next_name() -> str:
    """'Transfer N', one past the highest of this workspace's runs so named."""
    numbers = [int(r.name[9:]) for r in ws.runs("transfer") if r.name.startswith("Transfer ") and r.name[9:].isdigit()]
    return f"Transfer {max(numbers, default=0) + 1}"


def start() -> None:
    title = MODE_TITLES[mode].split(":")[0] if mode == "baseline" else f"{spec['title']}: {MODE_TITLES[mode]}"
    name = next_name()
    try:
        ws.ensure_room()
        job = manager.submit(ws.id, "cvcore.transfer_runs:transfer_job",
                             {"workspace": ws.ref(), "config": config_dict(config), "dataset": ds.to_json(),
                              "name": name, "title": title, "cache_dir": str(cache_dir),
                              "extra": {"weights": weights_choice}},
                             name=JOB_PREFIX + mode, kind="transfer")
    except CvcoreError as err:
        st.session_state["tl_submit_error"] = err
        return
    st.session_state[JOB_KEY] = job.id


c1, c2 = st.columns([1, 4], vertical_alignment="center")
c1.button("Train", type="primary", icon=":material/play_arrow:", key="tl_train", on_click=start,
          disabled=own is not None or not room,
          help="Runs in the background: the page stays usable and other sessions are not blocked.")
if own is None and others:
    c2.caption(room_caption(manager, others, room))
submit_error = st.session_state.pop("tl_submit_error", None)
if isinstance(submit_error, QuotaExceededError):
    quota_error(ws, submit_error, "tl")
elif submit_error is not None:
    st.error(str(submit_error), icon=":material/error:")


job = manager.get(st.session_state[JOB_KEY]) if st.session_state.get(JOB_KEY) else None


@st.fragment(run_every=1.0 if job is not None and job.active else None)
def live():
    job_view(manager.get(st.session_state[JOB_KEY]) if st.session_state.get(JOB_KEY) else None, key="tl",
             describe=describe_progress, on_end=run_ended(JOB_KEY, None),
             curves=live_learning_curves("tl"),
             stop_help="Ends the run within a batch and keeps what it learned so far (a stopped feature "
                       "extraction caches nothing).")


with st.container():
    live()

# ============================================================================ 5. runs
runs = ws.runs("transfer")
for problem in ws.problems():
    st.warning(f"A run in your workspace could not be read and is skipped ({problem}).", icon=":material/broken_image:")
if runs and runs[-1].status == "failed":  # the newest run failed: said from its record, whenever the page runs
    st.error(f"Training failed: {runs[-1].error}", icon=":material/error:")
if not runs:
    st.info("Train the baseline first: it tells how hard the data set is. Then a frozen base, cached features, "
            "fine-tuning, and compare.", icon=":material/school:")
    st.stop()

st.subheader("4 · Runs, side by side", divider="gray")
table = []
statuses = {r.id: ws.status(r) for r in runs}
for r in runs:
    h, cfg, x = r.history, r.config, r.extra
    secs = x.get("epoch_seconds") or []
    first_phase = r.phases[0][1] if r.phases and r.phases[0][1] else None
    per_epoch = float(np.median(secs[:first_phase])) if first_phase and secs[:first_phase] else None
    extraction = x.get("extraction")
    table.append({  # None where a value does not apply: shown as an empty cell
        "run": r.name, "model": r.title, "data": r.data.get("dataset"), "size": cfg.get("image_size"),
        "weights": "—" if cfg.get("mode") == "baseline" else "random" if cfg.get("mode") == "scratch"
        else x.get("weights"),
        "train images": x.get("train_images", len(r.data.get("train", [])) or None), "epochs": r.epochs_done,
        "train acc": (h.get("accuracy") or [None])[-1],
        "val acc": r.evaluation["accuracy"] if r.evaluation else None,
        "features": ("from the cache" if extraction["cached"] else f"computed in {extraction['seconds']:.0f} s")
        if extraction else "",
        "s / epoch": round(per_epoch, 3) if per_epoch else None,
        "seconds": round(r.seconds, 1) if r.seconds is not None else None,
        "status": STATUS_TEXT[statuses[r.id]],
    })
st.dataframe(table, hide_index=True, width="stretch", key="tl_runs_table", placeholder="",
             column_config={c: st.column_config.NumberColumn(format="%.4f") for c in ("train acc", "val acc")})
if any(s == "interrupted" for s in statuses.values()):
    st.caption(":material/warning: An *interrupted* run's job ended without finishing (the server stopped, or it "
               "crashed): it keeps the epochs it had saved.")
baselines = [r for r in runs if r.config.get("mode") == "baseline" and r.evaluation]
if baselines:
    b = baselines[-1]
    chance = 1 / len(b.extra["class_names"])
    acc = b.evaluation["accuracy"]
    verdict = ("Well above that: the raw pixels already tell much of the answer (colour, brightness, "
               "background), so read a ConvNet's score against this one, not against chance"
               if acc >= 1.5 * chance else
               "Hardly better: the pixels alone do not give the answer away here, so what a ConvNet scores it earns")
    st.info(f"**The baseline ({b.name}) reached {acc:.0%}** on validation; guessing gets {chance:.0%}. "
            f"{verdict}. The seed's lesson: if a trivial model does well, the data gives the answer away. Its "
            "logistic regression reached about 54% on the plant seedlings (12 classes); VGG16 with a new head "
            "about 85%.", icon=":material/lightbulb:")
names_by_id = {r.id: r.name for r in runs}
ids = [r.id for r in runs]
chosen = st.multiselect("Compare", ids, default=ids[-2:], format_func=names_by_id.get, key=f"tl_compare_{len(ids)}",
                        help="Solid: training. Dashed: validation. A dotted line marks where fine-tuning begins.")
if chosen:
    picked = {r.name: r.history for r in runs if r.id in chosen}
    phased = [r for r in runs if r.id in chosen and len(r.phases) > 1]
    phases = phased[0].phases if len(phased) == 1 else None  # where fine-tuning begins
    c1, c2 = st.columns(2)
    c1.plotly_chart(plots.learning_curves(picked, "loss", phases=phases), key="tl_cmp_loss")
    c2.plotly_chart(plots.learning_curves(picked, "accuracy", phases=phases), key="tl_cmp_acc")

# ============================================================================ 6. one run
st.subheader("5 · Inside one run", divider="gray")
judged = {r.id: r for r in runs if r.evaluation}
if not judged:
    st.info("The runs so far were stopped before they learned anything.", icon=":material/info:")
    st.stop()
pick = st.selectbox("Run", list(judged), index=len(judged) - 1, key=f"tl_eval_run_{len(judged)}",
                    format_func=lambda i: f"{judged[i].name}: {judged[i].title}")
run = judged[pick]
ev, names_ = run_evaluation(ws, run), run.extra.get("class_names") or []
validation = run_arrays(ws, run, "validation")
if ev is None or validation is None:
    st.stop()  # said on the page
x_val, y_val = validation["images"], validation["labels"]
m1, m2, m3, m4 = st.columns(4)
m1.metric("Validation accuracy", f"{ev.accuracy:.1%}", help=f"On all {len(y_val):,} validation images.")
m2.metric("Validation loss", f"{ev.loss:.4f}")
m3.metric("Mistakes", f"{len(ev.wrong):,}")
params = run.extra.get("params")
if params:
    m4.metric("Trainable parameters", f"{params['trainable']:,}", help=f"Of {params['total']:,} in all.")
with st.expander("Rename, download or delete this run", icon=":material/folder_managed:"):
    manage_run(ws, run, "tl")
if run.has_model:
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

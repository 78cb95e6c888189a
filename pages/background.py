"""Background removal: keep the leaves, black out the soil.

Reads top-down: the image, the method, its parameters, what the mask keeps
(over the image, before and after, the share of pixels kept and, for a
synthetic seedling, the IoU with the true leaves), then the same over the
whole data set loaded on the Data page (a background job with progress, a
Stop button and a zip to download). All numerics are cvcore's.
"""
import json
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from cvcore import background as bg
from cvcore import images, jobs
from cvcore.errors import CvcoreError
from cvcore.folders import ImageDataset, scan_image_folder
from ui import datasets, plots
from ui.common import show_error, wide_layout
from ui.image_source import pick_image
from ui.jobs import count_progress, job_view, page_job, room_caption
from ui.workspace import job_owner

COLUMNS = ("R", "G", "B", "threshold")
JOB_KEY, RESULT_KEY, DEST_KEY = "bg_job_id", "bg_folder_result", "bg_dest_dirs"

wide_layout()
st.title("Background removal")
st.caption(
    "The plant seedlings chapter keeps only what is leaf-green before training: it measures how far every "
    "pixel's colour is from a few leaf greens, keeps the close ones, cleans the mask with a median blur and "
    "paints the rest black, so that the network learns leaves, not soil. Try it here, then on a whole folder."
)
manager = jobs.default_manager()


@st.cache_data(show_spinner=False, max_entries=32)
def compute(img, method: str, params: dict, median: int):
    """The raw mask, the cleaned mask, the overlay and the result (cached: GrabCut takes a while)."""
    raw = bg.plant_mask(img, method, **params)
    mask = bg.clean_mask(raw, median)
    return {"mask": mask, "overlay": bg.overlay(img, mask), "after": bg.remove_background(img, mask, median=0),
            "kept": bg.kept_fraction(mask)}


@st.cache_data(show_spinner=False, max_entries=16)
def margins(img, method: str, targets, lightness_weight: float):
    return bg.distance_margins(img, method, targets, lightness_weight=lightness_weight)


# ============================================================================ 1. image
st.subheader("1 · Image", divider="gray")
raw, caption, truth = pick_image("bg", with_truth=True)
side = st.slider("Working size (longest side, px)", 256, 512, 384, step=32, key="bg_side",
                 help="Large photographs are shrunk to this size so that every edit answers at once. "
                      "The folder run below works on the images at their own size.")
img = images.fit_within(raw, side)
if truth is not None and truth.shape != img.shape[:2]:  # seedlings are 256 px, the smallest working size
    truth = None

# ============================================================================ 2. method
st.subheader("2 · Method", divider="gray")
method = st.segmented_control(
    "Method", bg.METHODS, default="rgb", format_func=bg.METHOD_TITLES.get, key="bg_method",
    help="How a pixel is judged to be plant: by its colour (three ways) or by GrabCut, which needs a rectangle.",
) or "rgb"
st.markdown(bg.describe_method(method))

# ============================================================================ 3. parameters
st.subheader("3 · Parameters", divider="gray")


def default_rows(targets):
    return [{"R": int(c[0]), "G": int(c[1]), "B": int(c[2]), "threshold": float(t)} for c, t in targets]


def reset_table(prefix: str, defaults) -> None:
    """Back to the default targets: a new editor key drops the edits."""
    st.session_state[f"bg_{prefix}_rows"] = default_rows(defaults)
    st.session_state[f"bg_{prefix}_version"] = st.session_state.get(f"bg_{prefix}_version", 0) + 1


# Kept through runs in which their widgets do not show (another method picked): Streamlit drops the state of a
# widget that is not drawn, and the tables (plain state) would then disagree with their presets.
for _prefix in ("rgb", "luv"):
    st.session_state[f"bg_{_prefix}_preset"] = st.session_state.get(f"bg_{_prefix}_preset", bg.CHAPTER_PRESET)
st.session_state["bg_median"] = st.session_state.get("bg_median", bg.CHAPTER_MEDIAN)  # the chapter's 9 to start


def preset_of(method: str, prefix: str) -> dict:
    """The preset picked for a method's table (the chapter's by default): its targets and median blur."""
    presets = bg.TARGET_PRESETS[method]
    return presets.get(st.session_state.get(f"bg_{prefix}_preset"), presets[bg.CHAPTER_PRESET])


def apply_preset(method: str, prefix: str) -> None:
    """A preset picked: its targets replace the table, and its median blur the blur's."""
    preset = preset_of(method, prefix)
    reset_table(prefix, preset["targets"])
    st.session_state["bg_median"] = preset["median"]


def swatches(targets) -> None:
    chips = []
    for (r, g, b), t in targets:
        colour = f"#{int(r):02x}{int(g):02x}{int(b):02x}"
        chips.append(f'<span style="display:inline-block;width:1.3em;height:1.3em;border-radius:3px;'
                     f'vertical-align:middle;border:1px solid #8884;background:{colour}"></span> '
                     f'<code>{colour}</code> &lt; {t:g}')
    st.markdown("  \n".join(chips), unsafe_allow_html=True)


def target_table(method: str, prefix: str, max_threshold: float, unit: str, *, integers: bool = False):
    """A preset and an editable table of target colours; returns the checked targets, or None (the error is
    shown). With ``integers`` the colours are whole numbers (the chapter's formula) and so are the thresholds
    shown."""
    presets = bg.TARGET_PRESETS[method]
    blurs = ", ".join(f"{name}: {preset['median']}" for name, preset in presets.items())
    st.columns([2, 3])[0].selectbox(
        "Preset", list(presets), key=f"bg_{prefix}_preset", on_change=apply_preset, args=(method, prefix),
        help="Target colours to start from: the chapter's four greens with its thresholds, or brighter "
             f"greens. Picking one replaces the table and sets the median blur that goes with it ({blurs}).")
    defaults = preset_of(method, prefix)["targets"]
    base, version = f"bg_{prefix}_rows", f"bg_{prefix}_version"
    if base not in st.session_state:
        st.session_state[base] = default_rows(defaults)
    left, right = st.columns([3, 2], vertical_alignment="center")
    edited = left.data_editor(
        pd.DataFrame(st.session_state[base], columns=list(COLUMNS)), num_rows="dynamic", hide_index=True,
        key=f"bg_{prefix}_table_v{st.session_state.get(version, 0)}", width="stretch",
        column_config={
            **{c: st.column_config.NumberColumn(c, min_value=0, max_value=255, step=1, format="%d",
                                                help=f"The target colour's {c} value, 0 to 255.") for c in "RGB"},
            "threshold": st.column_config.NumberColumn(
                "threshold", min_value=0.0, max_value=max_threshold, step=1.0, format="%d" if integers else "%g",
                help=f"Pixels closer than this to the colour are kept: {unit}; above 0, at most {max_threshold:,.0f}."),
        },
    )
    with right:
        try:
            targets = bg.targets_from_rows(edited, max_threshold=max_threshold, integers=integers)
        except CvcoreError as err:
            targets = None
            show_error(err, "Fix the cell (or delete the row); your other settings are kept.")
        else:
            swatches(targets)
        st.button("Reset the targets", key=f"bg_{prefix}_reset", on_click=reset_table, args=(prefix, defaults),
                  icon=":material/restart_alt:", help="Back to the preset's leaf greens, dropping your edits.")
    return targets


params = {}
if method == "rgb":
    st.caption("One row per target colour; add rows for other greens, delete the ones you do not need. "
               "A pixel is kept when its distance to *any* target is below that target's threshold. Thresholds "
               "are in the chapter's units, its redmean distance without the square root: 0 for the same colour, "
               "about 585,000 from black to white; the chapter's 1600 is a distance of 40 on the square-rooted "
               "scale, its 500 about 22.")
    targets = target_table("rgb", "rgb", bg.MAX_RGB_THRESHOLD,
                           "the chapter's units, the redmean distance squared (1600 is 40 on the square-rooted "
                           "scale; about 585,000 from black to white)", integers=True)
    params = {"targets": targets}
elif method == "cieluv":
    st.caption("The same target colours, compared in CIELUV; thresholds are ΔE*uv (about 1 is a "
               "just-noticeable difference, so they are smaller than the RGB ones).")
    targets = target_table("cieluv", "luv", bg.MAX_LUV_THRESHOLD, "ΔE*uv, about 1 is a just-noticeable difference")
    weight = st.slider("Lightness weight", 0.0, 1.0, 1.0, 0.05, key="bg_luv_lightness",
                       help="How much differences in lightness (L*) count: 1 is plain ΔE*uv; 0 compares only the "
                            "colour (u*, v*), so leaves in shadow still match.")
    params = {"targets": targets, "lightness_weight": weight}
elif method == "hsv":
    h0, s0, v0 = bg.DEFAULT_HSV["hue"], bg.DEFAULT_HSV["saturation"], bg.DEFAULT_HSV["value"]
    c1, c2, c3 = st.columns(3)
    hue = c1.slider("Hue (degrees)", 0, 360, (int(h0[0]), int(h0[1])), key="bg_hue",
                    help="0 red, 60 yellow, 120 green, 180 cyan, 240 blue, 300 magenta. (OpenCV's 8-bit HSV "
                         "stores half of it, 0 to 179.)")
    wrap = c1.toggle("Outside this range instead (wraps through red)", key="bg_hue_wrap",
                     help="Keeps hues from the high end round through 0 to the low end: reds, say.")
    sat = c2.slider("Saturation (%)", 0, 100, (int(s0[0]), int(s0[1])), key="bg_sat",
                    help="0 is grey, 100 the purest colour. Soil and pebbles are greyish; leaves are not.")
    val = c3.slider("Value (%)", 0, 100, (int(v0[0]), int(v0[1])), key="bg_val",
                    help="Brightness: 0 is black. A minimum drops dark soil whose hue is noise.")
    params = {"hue": (hue[1], hue[0]) if wrap else hue, "saturation": sat, "value": val}
else:
    fx, fy, fw, fh = bg.DEFAULT_RECT_FRACTION
    c1, c2, c3 = st.columns([2, 2, 1])
    xs = c1.slider("Rectangle: left to right (% of the width)", 0, 100, (round(fx * 100), round((fx + fw) * 100)),
                   key="bg_gc_x", help="GrabCut treats everything outside the rectangle as background.")
    ys = c2.slider("Rectangle: top to bottom (% of the height)", 0, 100, (round(fy * 100), round((fy + fh) * 100)),
                   key="bg_gc_y", help="Draw it around the plant, with a little soil inside.")
    iterations = int(c3.number_input("Iterations", 1, bg.MAX_ITERATIONS, bg.DEFAULT_ITERATIONS, key="bg_gc_iter",
                                     help="Rounds of fitting the colour models and cutting; more is slower."))
    params = {"rect_fraction": (xs[0] / 100, ys[0] / 100, (xs[1] - xs[0]) / 100, (ys[1] - ys[0]) / 100),
              "iterations": iterations}
median = st.columns([1, 2])[0].number_input(
    "Median blur of the mask (odd size; 1 = none)", 1, bg.MAX_MEDIAN, step=2, key="bg_median",
    help=f"Each mask pixel takes the majority of its size x size neighbours: lone specks of soil vanish and "
         f"pinholes in leaves fill. The chapter uses {bg.CHAPTER_MEDIAN}. A size wider than a thin leaf erases "
         "it: on small images try 5.")

valid = params.get("targets", ()) is not None  # a bad table cell: its message is shown above
if valid:
    try:
        params = bg.validate_params(method, **params, median=median)
        params["median"] = 0  # the blur is applied once, below, to the mask that is shown
        result = compute(img, method, params, int(median))
    except CvcoreError as err:
        valid = False
        show_error(err, "Your settings are kept; change the value to see the result again.")

# ============================================================================ 4. result
st.subheader("4 · What the mask keeps", divider="gray")
if valid:
    h, w = img.shape[:2]
    figs = [plots.image(result["overlay"], "Mask over the image (kept: magenta)", height=330),
            plots.image(img, f"Before: {caption}", height=330),
            plots.image(result["after"], "After: leaves on black", height=330)]
    if method == "grabcut":
        x, y, rw, rh = bg.rect_from_fraction(params["rect_fraction"], img.shape)
        for fig in figs[:2]:
            plots.add_window(fig, y, x, rh, rw, color="#ffd92f")
    for col, fig, key in zip(st.columns(3), figs, ("bg_overlay_fig", "bg_before_fig", "bg_after_fig")):
        col.plotly_chart(fig, key=key)
    with st.container(horizontal=True, gap="medium"):
        st.metric("Pixels kept", f"{result['kept']:.1%}", help="The share of the image under the cleaned mask.",
                  width="content")
        st.metric("Image", f"{h} x {w}", width="content")
        if truth is not None:
            st.metric("IoU with the true leaves", f"{bg.iou(result['mask'], truth):.3f}", width="content",
                      help="A synthetic seedling's maker knows where its leaves are: intersection over union "
                           "of the mask and the true leaves (1 is perfect). With the defaults, the three colour "
                           "methods reach about 0.91 to 0.98 on these seedlings; the chapter's 9 x 9 blur costs "
                           "the thin leaves' tips a little (0.95 to 1.00 without it).")
    if method in ("rgb", "cieluv") and st.toggle(
            "Show each target's distance map", key="bg_show_margins",
            help="Distance to the target minus its threshold, in the threshold's units (the chapter's for RGB): "
                 "blue pixels are within the threshold (kept; deep blue is the target colour itself), white at "
                 "the threshold, red beyond it."):
        maps = margins(img, method, params["targets"], params.get("lightness_weight", 1.0))
        titles = [f"#{int(r):02x}{int(g):02x}{int(b):02x}, threshold {t:g}" for (r, g, b), t in params["targets"]]
        st.plotly_chart(plots.map_grid(maps, titles, columns=min(len(maps), 4),
                                       zmaxes=[t for _, t in params["targets"]]), key="bg_margins_fig")
else:
    st.info("Fix the parameter above to see the mask.", icon=":material/tune:")

# ============================================================================ 5. folder
st.subheader("5 · Apply to a whole folder", divider="gray")
st.caption("The same method and parameters over every image of the data set loaded on the Data page, written as "
           "PNGs into a new folder of your workspace (class folders kept; the originals are never touched).")


def new_output_folder(prefix: str):
    """A new folder in the user's private workspace and the bytes it may still take (None: no
    quota), falling back to the session folder, or to a temporary one, where the workspace is missing."""
    workspace = getattr(datasets, "session_workspace", None)
    if workspace is not None:
        ws = workspace()
        return ws.new_folder(prefix), ws.room_left()
    session_dir = getattr(datasets, "session_dir", None)
    if session_dir is not None:
        base = Path(session_dir())
    else:
        if "bg_tmp_base" not in st.session_state:
            st.session_state["bg_tmp_base"] = tempfile.mkdtemp(prefix="cvx-background-")
        base = Path(st.session_state["bg_tmp_base"])
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=base)), None


def start_folder_run(ds, method, params, median) -> None:
    for old in st.session_state.get(DEST_KEY, []):  # one result kept per session: the disk is shared
        shutil.rmtree(old, ignore_errors=True)
    st.session_state.pop(DEST_KEY, None)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(ds.name)).strip("-")[:24] or "dataset"
    try:
        dest, room = new_output_folder(f"{slug}-no-background")
    except CvcoreError as err:
        st.session_state["bg_submit_error"] = str(err)
        return
    folder_params = dict(params)
    folder_params.pop("rect", None)  # GrabCut over images of any size: the rectangle as fractions
    # The job runs in a Ray worker: it gets names, numbers and paths (JSON), and writes the PNGs into `dest`.
    config = {"files": [str(f) for f in ds.files], "root": str(Path(ds.root)), "dest": str(dest), "method": method,
              "params": json.loads(json.dumps(folder_params)), "median": int(median),
              "max_bytes": None if room is None else int(room)}
    try:
        job = manager.submit(job_owner(), "cvcore.background:remove_background_folder_job", config,
                             name=f"background removal of {ds.name}", kind="background")
    except CvcoreError as err:
        shutil.rmtree(dest, ignore_errors=True)
        st.session_state["bg_submit_error"] = str(err)
        return
    st.session_state[DEST_KEY] = [str(dest)]
    st.session_state["bg_from"] = ds  # the cleaned folder keeps this data set's split
    st.session_state[JOB_KEY] = job.id
    st.session_state.pop(RESULT_KEY, None)


def use_cleaned(dest, from_ds) -> None:
    """The cleaned folder becomes the session's data set, with the split of the one it came from."""
    try:
        cleaned = ImageDataset.from_scan_like(scan_image_folder(dest), from_ds, name=f"{from_ds.name} (background removed)")
    except CvcoreError as err:
        st.session_state["bg_use_error"] = str(err)
    else:
        datasets.set_dataset(cleaned)


ds = datasets.current_dataset()
own, others, room = page_job(manager, job_owner(), lambda job: job.kind == "background")
if own is not None and JOB_KEY not in st.session_state:
    st.session_state[JOB_KEY] = own.id  # a reload, or a second tab: follow the workspace's folder run
    if ds is not None and hasattr(ds, "save"):
        st.session_state["bg_from"] = ds
if ds is None:
    st.info("No data set is loaded in your workspace: load one on the Data page, then come back here to remove "
            "the background of all its images.", icon=":material/folder_open:")
else:
    st.markdown(f"Data set **{ds.name}**: {len(ds.files):,} image{'' if len(ds.files) == 1 else 's'}. Method and "
                f"parameters as above: {bg.METHOD_TITLES[method]}, median blur {int(median)}.")
    st.button("Remove the background of every image", type="primary", icon=":material/play_arrow:",
              key="bg_folder_run", on_click=start_folder_run, args=(ds, method, params, int(median)),
              disabled=not valid or own is not None or not room or not ds.files,
              help="Runs in the background with a progress bar and a Stop button; you can keep using the page.")
    if own is None and others:
        st.caption(room_caption(manager, others, room))
if st.session_state.get("bg_submit_error"):
    st.error(st.session_state.pop("bg_submit_error"), icon=":material/error:")

job = manager.get(st.session_state[JOB_KEY]) if st.session_state.get(JOB_KEY) else None


LAST_RUN = "background-run"  # the workspace's note of its last folder run, so that a reload shows it again


def folder_ended(ended) -> None:
    """Keep the summary (or the failure) for the page below: the written folder, the download; the summary
    and the data set it came from also in the workspace."""
    if ended.status == "failed":
        st.session_state["bg_failed"] = ended.error
    elif ended.result is None:  # stopped while it waited in the queue: it never started
        st.session_state["bg_never_started"] = True
    else:
        try:  # the job returns its summary as JSON (bg.FolderSummary.to_json)
            summary = st.session_state[RESULT_KEY] = bg.FolderSummary.from_json(ended.result)
        except CvcoreError as err:
            st.session_state["bg_failed"] = str(err)
            st.session_state.pop(JOB_KEY, None)
            return
        ws = datasets.session_workspace()
        try:
            from_ds = st.session_state.get("bg_from")
            if from_ds is not None and hasattr(from_ds, "save"):
                from_ds.save(ws.path / "background-source.json")
            ws.write_json(LAST_RUN, summary.to_json())
        except (CvcoreError, OSError):
            pass  # shown now all the same; a reload will not find it
    st.session_state.pop(JOB_KEY, None)


def last_folder_run():
    """The summary of the workspace's last folder run, from this session or from the workspace (a reload)."""
    if RESULT_KEY not in st.session_state:
        ws = datasets.session_workspace()
        saved = ws.read_json(LAST_RUN)
        try:
            found = bg.FolderSummary.from_json(saved) if saved else None
        except CvcoreError:
            found = None  # a damaged note: as if there were none
        if found is not None and Path(found.dest).is_dir():
            st.session_state[RESULT_KEY] = found
            try:
                st.session_state["bg_from"] = ImageDataset.load(ws.path / "background-source.json")
            except CvcoreError:
                pass
    return st.session_state.get(RESULT_KEY)


@st.fragment(run_every=0.5 if job is not None and job.active else None)
def folder_progress():
    job_view(manager.get(st.session_state[JOB_KEY]) if st.session_state.get(JOB_KEY) else None, key="bg",
             describe=count_progress("images"), on_end=folder_ended,
             stop_help="Ends the run after the current image; what was written is kept.")


with st.container():  # the polling fragment in a container of its own
    folder_progress()

if st.session_state.get("bg_failed"):
    st.error(f"The folder run failed: {st.session_state.pop('bg_failed')}", icon=":material/error:")
if st.session_state.pop("bg_never_started", False):
    st.info("The folder run was stopped before it started; nothing was written.", icon=":material/stop_circle:")
summary = last_folder_run()
if summary is not None:
    (st.warning if summary.stopped or summary.skipped else st.success)(summary.describe())
    if summary.written and Path(summary.dest).is_dir():
        st.download_button("Download the images (zip)", data=lambda: bg.zip_folder(summary.dest),
                           file_name=f"{Path(summary.dest).name.rsplit('-', 1)[0]}.zip", mime="application/zip",
                           icon=":material/download:", key="bg_download",
                           help="Class folders of PNGs, leaves on black, ready for the Data page or Keras.")
        from_ds = st.session_state.get("bg_from")
        if from_ds is not None:
            st.button("Use the cleaned images as your data set", key="bg_use", icon=":material/swap_horiz:",
                      on_click=use_cleaned, args=(summary.dest, from_ds),
                      help=f"The Data, Augmentation and later pages then work on leaves on black, with the same "
                           f"validation split as {from_ds.name}.")
        if st.session_state.get("bg_use_error"):
            show_error(CvcoreError(st.session_state.pop("bg_use_error")))
        cleaned = datasets.current_dataset()
        if cleaned is not None and cleaned.source == "derived" and Path(cleaned.root) == Path(summary.dest):
            st.success(f"**{cleaned.name}** is your data set: {len(cleaned):,} images, "
                       f"{int(cleaned.validation.sum()):,} in validation as before.", icon=":material/check_circle:")
    if summary.skipped:
        st.dataframe(pd.DataFrame(summary.skipped, columns=["file", "why it was skipped"]), hide_index=True,
                     key="bg_skipped")

"""Your image folders: one folder per class, scanned, checked, and split for validation.

Reads top-down: where the images come from (a demo made offline, an uploaded
zip, or a folder the operator offers), the scan (classes, counts, sizes,
samples, files that could not be read), then the validation split, saved
with the data set so that the later pages use the same one. A folder of more
than 1,000 images is checked by a job on Ray, outside the page server (its
progress, Stop, and a reload following it). All numerics are cvcore's;
nothing here moves or changes the user's files.
"""
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from cvcore import archives, jobs, samples
from cvcore.errors import CvcoreError
from cvcore.folders import FolderScan, ImageDataset, count_image_files, find_dataset_roots, scan_image_folder
from cvcore.jobs import JobBusyError
from cvcore.workspace import QuotaExceededError, state_dir
from ui import plots
from ui.common import show_error, wide_layout
from ui.jobs import count_progress, job_view, page_job
from ui.runs import quota_error
from ui.datasets import (clear_dataset, current_dataset, manifest_path, server_folders, session_workspace, set_dataset,
                         thumbnails)
from ui.workspace import job_owner

MAX_ZIP_FILES = 20_000
MAX_ZIP_BYTES = 512 * 1024 * 1024
SAMPLES_PER_CLASS = 6
UPLOAD_KEY = "upload"  # the workspace's note of its zip: {"file_id", "name", "folder", "files", "junk"}
SCANS_KEY = "cvx_scans"  # root -> FolderScan, this session's scans
INLINE_SCAN_MAX = 1_000  # more images than this: checked by a job on Ray, outside the page server
SCAN_JOB_KEY = "data_scan_job"  # the scan job this session follows: {"id", "root", "out", "name"}
SCAN_NOTE = "data-scan-job"  # the same note in the workspace, so that a reload follows a running scan
FAILED_KEY = "data_scan_failed"  # root -> why its scan job failed (shown until Scan again)

wide_layout()
st.title("Your image folders")
st.caption(
    "Real photographs come as a folder per class, the layout Keras reads with "
    "`keras.utils.image_dataset_from_directory` (formerly `ImageDataGenerator.flow_from_directory`). "
    "Load one here: it is checked file by file, split for validation without moving a file, and used "
    "by the Augmentation, Background removal and Transfer pages. It is kept in your workspace."
)

derived = current_dataset()
if derived is not None and derived.source == "derived":  # made on the Background page: keep it until replaced
    st.info(f"Your data set is **{derived.name}**, made on the Background removal page: "
            f"{len(derived):,} images, {int(derived.validation.sum()):,} of them in validation "
            "(the split it was made from).", icon=":material/grass:")
    st.plotly_chart(plots.class_counts(derived.counts), key="data_derived_counts")
    st.button("Choose another data set", key="data_replace", icon=":material/folder_open:",
              on_click=clear_dataset,
              help="Back to the demo, an upload or a server folder; the cleaned images stay in your workspace.")
    st.stop()

# ============================================================================ 1. source
st.subheader("1 · Choose the images", divider="gray")
source = st.segmented_control(
    "Source", ["Demo", "Upload a zip", "Server folder"], default="Demo", key="data_source",
    help="A demo data set made here, offline; a .zip of class folders from your computer; or a folder "
         "that the operator of this server offers.",
) or "Demo"


def demo_root():
    name = st.selectbox("Demo data set", list(samples.DEMO_FOLDERS), key="data_demo",
                        format_func=lambda n: samples.DEMO_FOLDERS[n][0],
                        help="Made on this machine, no download: Fashion-MNIST from Debian's package (or the bundled "
                             "digits), or synthetic seedlings on soil.")
    with st.spinner("Writing the demo images (once per server)…"):
        root = samples.demo_folder(name, state_dir() / "demo")
    return root, samples.DEMO_FOLDERS[name][0].split(" (")[0], "demo", None


def receive_zip(up):
    """Extract a new upload into the workspace's private folder, replacing the previous one."""
    ws = session_workspace()
    previous = ws.read_json(UPLOAD_KEY)
    if previous is not None:
        ws.remove(previous["folder"])
        ws.write_json(UPLOAD_KEY, None)
    ws.ensure_room(up.size)  # QuotaExceededError: how much is used, and runs offered for deletion
    folder = ws.new_folder("upload")
    try:
        result = archives.extract_zip(up, folder / "files", max_files=MAX_ZIP_FILES,
                                      max_bytes=min(MAX_ZIP_BYTES, ws.room_left()))
    except CvcoreError:
        ws.remove(folder)
        raise
    ws.write_json(UPLOAD_KEY, {"file_id": up.file_id, "name": up.name, "folder": str(folder),
                               "files": len(result.files), "junk": len(result.skipped)})


def upload_root():
    up = st.file_uploader(
        "A .zip of class folders", type=["zip"], key="data_zip",
        help=f"One folder per class inside (cats/1.jpg, dogs/2.jpg, …). At most {MAX_ZIP_FILES:,} files and "
             f"{MAX_ZIP_BYTES // 2**20} MiB unpacked. It is unpacked into a folder private to your workspace, "
             "where it stays until you upload another.")
    stored = session_workspace().read_json(UPLOAD_KEY)
    if up is not None and (stored is None or stored["file_id"] != up.file_id):
        try:
            with st.spinner(f"Unpacking {up.name}…"):
                receive_zip(up)
        except QuotaExceededError as err:
            quota_error(session_workspace(), err, "data")
            st.stop()
        except CvcoreError as err:
            show_error(err, "Nothing from this archive was kept. Fix the archive, or pick another source.")
            st.stop()
        st.session_state.pop(SCANS_KEY, None)
        stored = session_workspace().read_json(UPLOAD_KEY)
    if stored is None or not Path(stored["folder"]).is_dir():
        st.info("Upload a .zip whose top level (or one folder down) holds one folder per class.",
                icon=":material/upload:")
        st.stop()
    st.caption(f":material/lock: **{stored['name']}**: {stored['files']:,} files unpacked into your "
               "workspace's private folder" + (f"; {stored['junk']} archiver files (`__MACOSX`, `.DS_Store`) left out." if stored["junk"] else "."))
    roots = find_dataset_roots(Path(stored["folder"]) / "files")
    if not roots:
        show_error(CvcoreError(f"{stored['name']!r} has no class folders with images in them."),
                   "Put each class's images in a folder of its own (cats/1.png, dogs/2.png) and zip those folders.")
        st.stop()
    base = Path(stored["folder"]) / "files"
    root = roots[0]
    if len(roots) > 1:
        root = st.selectbox("Which folder holds the classes?", roots, key="data_zip_root",
                            format_func=lambda p: p.relative_to(base).as_posix() or "(top level)",
                            help="The archive has several folders laid out as a data set (train/ and valid/, say).")
    name = Path(stored["name"]).stem if root == base else root.relative_to(base).as_posix()
    return root, name, "upload", stored["folder"]


def server_root():
    folders = server_folders()
    if not folders:
        st.info(
            "This server offers no folders. The operator can offer some by starting the app with "
            "`CVCORE_DATA_DIRS=/data/plant-seedlings:/data/other streamlit run app.py`: each folder, or a "
            "data set inside it such as `plant-seedlings/train`, appears here, read-only.",
            icon=":material/dns:")
        st.stop()
    label = st.selectbox("Folder on the server", list(folders), key="data_server",
                         help="Offered by this server's operator ($CVCORE_DATA_DIRS). Read-only: nothing is written into it.")
    return folders[label], label, "server", None


root, name, origin, home = {"Demo": demo_root, "Upload a zip": upload_root, "Server folder": server_root}[source]()

# ============================================================================ 2. scan
st.subheader("2 · What is in it", divider="gray")
scans = st.session_state.setdefault(SCANS_KEY, {})
key = str(root)


following = st.session_state.get(SCAN_JOB_KEY)  # the scan job this session follows, if any


def stop_scan():
    st.session_state["data_scan_stopped"] = key


def scan_again():
    scans.pop(key, None)
    st.session_state.pop("data_scan_stopped", None)
    st.session_state.get(FAILED_KEY, {}).pop(key, None)
    if st.session_state.get(SCAN_JOB_KEY) is not None and st.session_state[SCAN_JOB_KEY]["root"] == key:
        st.session_state.pop(SCAN_JOB_KEY)  # a job no longer heard of (the button is off while it runs)


def running_scan():
    """The workspace's scan job still running (a reload, or another tab started it), as a note to follow, or None."""
    active, _, _ = page_job(jobs.default_manager(), job_owner(), lambda job: job.kind == "scan")
    if active is None:
        return None
    note = session_workspace().read_json(SCAN_NOTE)
    return note if isinstance(note, dict) and note.get("id") == active.id else None


def submit_scan():
    """Scan ``root`` as a job on Ray; returns the note followed, or None (the reason is shown)."""
    ws = session_workspace()
    out = ws.path / "scans" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    try:
        ws.ensure_room()
        job = jobs.default_manager().submit(job_owner(), "cvcore.folders:scan_job", {"root": key, "out": str(out)},
                                            name=f"scan of {name}", kind="scan")
    except QuotaExceededError as err:
        quota_error(ws, err, "data_scan")
        return None
    except JobBusyError as err:
        st.warning(f"A folder this big (over {INLINE_SCAN_MAX:,} images) is checked as a background job, and your "
                   f"workspace is already running one ({err.job.name}). It is checked once that one ends: come back "
                   "then, or stop it on its page.", icon=":material/hourglass_top:")
        return None
    except CvcoreError as err:
        show_error(err, "Try again in a moment, or pick a smaller folder.")
        return None
    note = {"id": job.id, "root": key, "out": str(out), "name": name}
    try:
        ws.write_json(SCAN_NOTE, note)  # a reload follows it
    except (CvcoreError, OSError):
        pass
    st.session_state[SCAN_JOB_KEY] = note
    return note


def scan_ended(job) -> None:
    """The scan job has ended: load what it saved (it is then this session's scan of its folder), or keep
    why it stopped or failed for the page to say."""
    note = st.session_state.pop(SCAN_JOB_KEY, None) or {}
    folder = note.get("root")
    if folder is None:
        return
    if job.status == "done" and (job.result or {}).get("out"):
        try:
            st.session_state.setdefault(SCANS_KEY, {})[folder] = FolderScan.load(job.result["out"])
        except CvcoreError as err:
            st.session_state.setdefault(FAILED_KEY, {})[folder] = str(err)
    elif job.status in ("done", "stopped"):
        st.session_state["data_scan_stopped"] = folder
    else:
        st.session_state.setdefault(FAILED_KEY, {})[folder] = job.error or "The scan failed."


c1, c2 = st.columns([1, 5])
needed = (key not in scans and st.session_state.get("data_scan_stopped") != key
          and not st.session_state.get(FAILED_KEY, {}).get(key))
big = needed and following is not None and following["root"] == key
if needed and not big:
    try:
        big = count_image_files(root, stop_after=INLINE_SCAN_MAX) > INLINE_SCAN_MAX  # a walk, nothing opened
    except CvcoreError:
        big = False  # the scan below says what is wrong, as for any folder
if big and following is None:  # follow the workspace's running scan (a reload), or start one
    following = running_scan() or submit_scan()
    if following is not None:
        st.session_state[SCAN_JOB_KEY] = following
followed_job = jobs.default_manager().get(following["id"]) if following is not None else None
c1.button("Scan again", key="data_rescan", icon=":material/refresh:", on_click=scan_again,
          disabled=following is not None and following["root"] == key and followed_job is not None and followed_job.active,
          help="Check every file again (after files were added or changed on the server).")
if key not in scans:
    if st.session_state.get("data_scan_stopped") == key:
        st.warning("The scan was stopped; nothing was loaded. Press **Scan again** to start over.", icon=":material/stop_circle:")
        st.stop()
    failed = st.session_state.get(FAILED_KEY, {}).get(key)
    if failed:
        show_error(CvcoreError(failed), "Pick another folder, or fix its layout and scan again.")
        st.stop()
    if big:  # checked by a job on Ray, outside the page server, with its progress and Stop below
        if following is None:
            st.stop()  # it could not be started: submit_scan said why
        if following["root"] != key:
            st.info(f"Your workspace is checking **{following.get('name') or following['root']}** first; this "
                    "folder is checked when that scan ends (or after you stop it).", icon=":material/hourglass_top:")
        else:
            st.caption(f"Over {INLINE_SCAN_MAX:,} images: every file is checked by a background job, outside this "
                       "page's server. You can keep using the other pages meanwhile; Stop ends it, loading nothing.")

        @st.fragment(run_every=None if followed_job is not None and not followed_job.active else 0.5)
        def scan_progress():
            note = st.session_state.get(SCAN_JOB_KEY)
            job = jobs.default_manager().get(note["id"]) if note is not None else None
            if note is not None and job is None:
                st.info("The job service is not answering just now; this page asks again by itself.",
                        icon=":material/cloud_off:")
            job_view(job, key="data_scan", describe=count_progress("files", "Checking every file"), on_end=scan_ended,
                     stop_help="Stops checking files; nothing is loaded then.")

        with st.container():  # the polling fragment in a container of its own
            scan_progress()
        st.stop()
    stop_slot = c2.empty()
    stop_slot.button("Stop scanning", key="data_stop", on_click=stop_scan, icon=":material/stop:",
                     help="Stop checking files; nothing is loaded then.")
    bar = st.progress(0.0, text="Looking for class folders…")

    def progress(done, total):
        bar.progress(done / max(total, 1), text=f"Checking every file: {done:,} of {total:,}")

    try:
        scans[key] = scan_image_folder(root, on_progress=progress)
    except CvcoreError as err:
        show_error(err, "Pick another folder, or fix its layout and scan again.")
        st.stop()
    finally:
        bar.empty()
        stop_slot.empty()
scan = scans[key]

# The split saved with this data set in this workspace (by an earlier visit), when the files are the same.
manifest = manifest_path(root, home)
saved = None
if manifest.is_file():
    try:
        saved = ImageDataset.load(manifest)
    except CvcoreError:
        saved = None
fresh = ImageDataset.from_scan(scan, name=name, source=origin)
if saved is not None and saved.fingerprint() != fresh.fingerprint():
    st.info("The files changed since this data set's split was saved; a new split is made.", icon=":material/sync:")
    saved = None

m = st.columns(4)
m[0].metric("Classes", len(scan.classes))
m[1].metric("Images", f"{len(scan.files):,}")
m[2].metric("Could not be read", f"{len(scan.unreadable):,}")
m[3].metric("Scan time", f"{scan.seconds:.1f} s")
empty = [c for c, n in scan.counts.items() if n == 0]
if empty:
    st.warning(f"No readable images in {', '.join(map(repr, empty))}: Keras would still count "
               f"{'it' if len(empty) == 1 else 'them'} as a class.", icon=":material/warning:")
if scan.nested:
    st.warning(f"Images sit in sub-folders of {', '.join(map(repr, scan.nested))}. Keras reads them as part of "
               "that class; if those sub-folders are classes, pick the folder one level down as the data set.",
               icon=":material/account_tree:")
if not scan.files:
    st.error("No readable images: nothing to split.", icon=":material/error:")
    st.stop()

# ============================================================================ 3. split
st.subheader("3 · Validation split", divider="gray")
st.caption(
    "The seed moved 12 images of each class into a validation folder with `os.rename`. Here the split is an "
    "index over the files: stratified by class, seeded, saved with the data set, and not a file is moved."
)
if st.session_state.get("data_split_for") != key:  # a new data set: start from its saved split
    st.session_state["data_split_for"] = key
    split = (saved.split if saved is not None else {"per_class": None, "fraction": 0.2, "seed": 0})
    st.session_state["data_split_kind"] = "Images per class" if split.get("per_class") is not None else "Fraction"
    st.session_state["data_per_class"] = int(split.get("per_class") or 12)
    st.session_state["data_fraction"] = float(split.get("fraction") or 0.2)
    st.session_state["data_seed"] = int(split.get("seed") or 0)
c1, c2, c3 = st.columns(3)
kind = c1.radio("Set aside", ["Images per class", "Fraction"], key="data_split_kind", horizontal=True,
                help="So many images of each class (the seed: 12), or the same share of each class.")
if kind == "Images per class":
    per_class, fraction = int(c2.number_input("Validation images per class", 0, 10_000, key="data_per_class",
                                              help="Each class keeps at least one training image.")), None
else:
    per_class, fraction = None, float(c2.slider("Validation fraction", 0.0, 0.5, step=0.05, key="data_fraction",
                                                help="The share of each class set aside."))
seed = int(c3.number_input("Seed", 0, 2**31 - 1, key="data_seed", help="The same seed gives the same split."))
ds = fresh.resplit(per_class=per_class, fraction=fraction, seed=seed)
if saved is None or saved.split != ds.split:
    try:
        ds.save(manifest)
    except OSError as err:
        st.warning(f"The split could not be saved ({err}); it is used until you leave this page.", icon=":material/save:")
set_dataset(ds)
n_val = int(ds.validation.sum())
st.success(f"**{ds.name}**: {len(ds) - n_val:,} training and {n_val:,} validation images in {len(ds.classes)} classes, "
           "used by the other pages.", icon=":material/check_circle:")

c1, c2 = st.columns(2)
c1.plotly_chart(plots.class_counts(ds.counts), key="data_counts_fig")
c2.plotly_chart(plots.image_sizes(ds.sizes, ds.labels, ds.classes), key="data_sizes_fig")
conversions = pd.Series([c for c in scan.conversions if c]).value_counts()
if len(conversions):
    st.caption("Converted to 8-bit RGB when read: " + "; ".join(f"{n:,} {what}" for what, n in conversions.items()) + ".")

# ============================================================================ 4. samples, problems, code
st.subheader("4 · A look inside", divider="gray")
tab_samples, tab_bad, tab_code = st.tabs(
    ["Samples per class", f"Could not be read ({len(scan.unreadable)})", "In Keras"], key="data_tabs", on_change="rerun")
if tab_samples.open:
    with tab_samples:
        n = st.slider("Images per class", 1, 12, SAMPLES_PER_CLASS, key="data_n_samples")
        for i, cname in enumerate(ds.classes):
            members = np.flatnonzero(ds.labels == i)[:n]
            if not len(members):
                continue
            try:
                thumbs = thumbnails(ds, members)
            except CvcoreError as err:
                show_error(err, "A file changed since the scan: press **Scan again**.")
                continue
            st.markdown(f"**{cname}** · {ds.counts[cname][0]} train, {ds.counts[cname][1]} validation")
            st.image(thumbs, caption=[f"{ds.files[j].split('/')[-1]} ({ds.sizes[j][1]}x{ds.sizes[j][0]})"
                                      + (" · val" if ds.validation[j] else "") for j in members], width=96)
if tab_bad.open:
    with tab_bad:
        if scan.unreadable:
            st.dataframe(pd.DataFrame(scan.unreadable, columns=["file", "why it was skipped"]),
                         hide_index=True, width="stretch", key="data_bad_table")
        else:
            st.success("Every file is an image that can be read.", icon=":material/check_circle:")
if tab_code.open:
    with tab_code:
        st.markdown(
            "Keras reads the same folder with `image_dataset_from_directory`. Its own `validation_split` takes "
            "the last files of a shuffled list, not a share of each class; to train on exactly this split, "
            "feed the saved file lists to `tf.data`:")
        st.code(f'''import json, keras, tensorflow as tf

# Keras' own reading of the folder (its split is not stratified):
train_ds, val_ds = keras.utils.image_dataset_from_directory(
    "{ds.root.name}", validation_split=0.2, subset="both", seed={seed},
    image_size=(150, 150), batch_size=32)

# This page's split, from the manifest downloaded below:
m = json.load(open("dataset.json"))
val = set(m["validation"])
def files(subset):
    idx = [i for i in range(len(m["files"])) if (i in val) == (subset == "validation")]
    return [f"{{m['root']}}/{{m['files'][i]}}" for i in idx], [m["labels"][i] for i in idx]

def load(path, label):
    img = tf.image.resize(tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False), (150, 150))
    return img, label

paths, labels = files("train")
train_ds = (tf.data.Dataset.from_tensor_slices((paths, labels)).shuffle(len(paths), seed={seed})
            .map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(32).prefetch(tf.data.AUTOTUNE))''', language="python")
        st.caption("The seed, in Keras 2: `ImageDataGenerator(rescale=1/255).flow_from_directory(folder, target_size=(150, 150))` "
                   "fed `model.fit_generator`; in Keras 3 both are gone, and `model.fit` takes the dataset.")
        split_csv = pd.DataFrame({"file": ds.files, "class": [ds.classes[i] for i in ds.labels],
                                  "subset": np.where(ds.validation, "validation", "train")}).to_csv(index=False)
        c1, c2 = st.columns(2)
        c1.download_button("Download the manifest (dataset.json)", json.dumps(ds.to_json(), indent=1),
                           file_name="dataset.json", mime="application/json", key="data_dl_manifest",
                           icon=":material/download:")
        c2.download_button("Download the split (split.csv)", split_csv, file_name="split.csv", mime="text/csv",
                           key="data_dl_split", icon=":material/download:")

if current_dataset() is not None:
    st.page_link("pages/augment.py", label="Augment these images", icon=":material/auto_awesome_motion:")
    st.page_link("pages/background.py", label="Remove the background from these images", icon=":material/grass:")

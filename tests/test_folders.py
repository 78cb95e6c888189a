"""Image folders from untrusted sources: safe zip extraction, folder scans, the split index,
the data set manifest, and the offline sample images (workspaces: tests/test_workspace.py)."""
import io
import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvcore import data, samples
from cvcore.archives import extract_zip
from cvcore.errors import CvcoreError, InvalidImageError, UnsafeArchiveError
from cvcore.folders import (FolderScan, ImageDataset, count_image_files, find_dataset_roots, make_split,
                            scan_image_folder)
from cvcore.imagefile import probe_image
from test_data import huge_png_header


def png_bytes(mode="RGB", size=(12, 9), colour=None, fmt="PNG"):
    buf = io.BytesIO()
    img = Image.new(mode, size) if colour is None else Image.new(mode, size, colour)
    img.save(buf, fmt)
    return buf.getvalue()


def make_zip(entries, *, symlinks=()):
    """A zip built in memory: {name: bytes}, plus names stored as symbolic links."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in entries.items():
            zf.writestr(name, payload)
        for name in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


# ============================================================================ extract_zip


def test_the_api_named_in_the_issue_lives_in_cvcore_data():
    assert data.extract_zip is extract_zip and data.scan_image_folder is scan_image_folder
    assert issubclass(UnsafeArchiveError, ValueError)


def test_a_good_zip_is_extracted_privately(tmp_path):
    raw = make_zip({"set/cats/1.png": png_bytes(), "set/dogs/2.png": png_bytes(), "__MACOSX/set/._1.png": b"x",
                    "set/.DS_Store": b"x"})
    result = extract_zip(raw, tmp_path / "out")
    assert sorted(result.files) == ["set/cats/1.png", "set/dogs/2.png"]
    assert len(result.skipped) == 2 and not (tmp_path / "out" / "__MACOSX").exists()
    written = tmp_path / "out" / "set" / "cats" / "1.png"
    assert written.read_bytes() == png_bytes()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700


def test_file_objects_and_paths_are_accepted(tmp_path):
    raw = make_zip({"a/1.png": png_bytes()})
    (tmp_path / "x.zip").write_bytes(raw)
    assert extract_zip(tmp_path / "x.zip", tmp_path / "p").files == ["a/1.png"]
    assert extract_zip(io.BytesIO(raw), tmp_path / "f").files == ["a/1.png"]


@pytest.mark.parametrize("name, why", [
    ("../evil.png", "climbs out"),
    ("cats/../../evil.png", "climbs out"),
    ("..\\..\\evil.png", "climbs out"),
    ("/tmp/evil.png", "absolute path"),
    ("C:/Windows/evil.png", "absolute path"),
])
def test_entries_that_escape_are_refused_and_nothing_is_written(tmp_path, name, why):
    raw = make_zip({"cats/1.png": png_bytes(), name: b"pwned"})
    with pytest.raises(UnsafeArchiveError, match=why) as err:
        extract_zip(raw, tmp_path / "out")
    assert repr(name) in str(err.value)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.png").exists() and not Path("/tmp/evil.png").exists()


def test_symbolic_links_are_refused(tmp_path):
    raw = make_zip({"cats/1.png": png_bytes()}, symlinks=["cats/passwd.png"])
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        extract_zip(raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_zip_bomb_is_refused_from_its_declared_size(tmp_path):
    raw = make_zip({f"c/{i}.png": b"\0" * (4 * 2**20) for i in range(8)})  # 32 MiB in ~33 KB
    assert len(raw) < 100_000
    with pytest.raises(UnsafeArchiveError, match="MiB"):
        extract_zip(raw, tmp_path / "out", max_bytes=16 * 2**20)
    assert not (tmp_path / "out").exists()


def test_an_archive_that_lies_about_its_sizes_leaves_nothing(tmp_path):
    raw = bytearray(make_zip({"c/big.png": b"\0" * 2**20}))
    # Patch the declared uncompressed size (local header offset 22, central directory offset 24) to 1000.
    local, central = raw.find(b"PK\x03\x04"), raw.find(b"PK\x01\x02")
    raw[local + 22:local + 26] = (1000).to_bytes(4, "little")
    raw[central + 24:central + 28] = (1000).to_bytes(4, "little")
    (tmp_path / "out").mkdir()
    with pytest.raises(UnsafeArchiveError):
        extract_zip(bytes(raw), tmp_path / "out", max_bytes=10_000)
    assert list((tmp_path / "out").iterdir()) == []


def test_caps_on_files_and_duplicates_and_junk(tmp_path):
    with pytest.raises(UnsafeArchiveError, match="more than 3 files"):
        extract_zip(make_zip({f"c/{i}.png": b"x" for i in range(4)}), tmp_path / "a", max_files=3)
    with pytest.raises(UnsafeArchiveError, match="same file"):
        extract_zip(make_zip({"c/A.png": b"x", "c/a.png": b"y"}), tmp_path / "b")
    with pytest.raises(UnsafeArchiveError, match="not a zip"):
        extract_zip(b"this is a text file named .zip", tmp_path / "c")
    with pytest.raises(UnsafeArchiveError, match="max_files"):
        extract_zip(make_zip({"c/1.png": b"x"}), tmp_path / "d", max_files=0)


def test_the_target_must_be_new_or_empty(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(UnsafeArchiveError, match="new or empty"):
        extract_zip(make_zip({"c/1.png": b"x"}), tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


# ============================================================================ scan_image_folder


def bad_and_odd_folder(root: Path) -> Path:
    """Two classes of good images in every mode the app converts, and every kind of bad file."""
    (root / "cats").mkdir(parents=True)
    (root / "dogs" / "puppies").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "cats" / "rgb.png").write_bytes(png_bytes())
    (root / "cats" / "gray.png").write_bytes(png_bytes("L"))
    (root / "cats" / "palette.png").write_bytes(png_bytes("P"))
    (root / "cats" / "alpha.png").write_bytes(png_bytes("RGBA", colour=(255, 0, 0, 128)))
    (root / "cats" / "cmyk.jpg").write_bytes(png_bytes("CMYK", fmt="JPEG"))
    Image.fromarray(np.full((9, 12), 40000, np.uint16)).save(root / "dogs" / "deep.png")
    (root / "dogs" / "puppies" / "small.png").write_bytes(png_bytes(size=(5, 4)))
    full = png_bytes(size=(64, 64), colour=(1, 2, 3))
    (root / "dogs" / "truncated.png").write_bytes(full[: len(full) // 2])
    (root / "dogs" / "notes.jpg").write_text("a text file named .jpg")
    (root / "dogs" / "bomb.png").write_bytes(huge_png_header(30_000, 30_000))
    (root / "dogs" / "readme.txt").write_text("labels by hand")
    (root / "dogs" / ".hidden.png").write_bytes(png_bytes())
    Image.fromarray(np.zeros((4, 4), np.float32), mode="F").save(root / "dogs" / "float.tif")
    (root / "loose.png").write_bytes(png_bytes())
    os.symlink("/etc/hostname", root / "cats" / "link.png")
    return root


def test_scan_reports_every_unreadable_file_with_its_reason(tmp_path):
    root = bad_and_odd_folder(tmp_path / "set")
    scan = scan_image_folder(root, max_pixels=1_000_000)
    assert scan.classes == ["cats", "dogs", "empty"]
    assert scan.counts == {"cats": 5, "dogs": 2, "empty": 0}
    reasons = dict(scan.unreadable)
    assert "truncated" in reasons["dogs/truncated.png"]
    assert "not an image" in reasons["dogs/notes.jpg"]
    assert "pixels" in reasons["dogs/bomb.png"]
    assert "extension '.txt'" in reasons["dogs/readme.txt"]
    assert "not supported" in reasons["dogs/float.tif"]
    assert "link" in reasons["cats/link.png"]
    assert "class folder" in reasons["loose.png"]
    assert not any(".hidden" in f for f in scan.files) and ".hidden.png" not in str(scan.unreadable)
    assert scan.nested == ["dogs"]
    conversions = dict(zip(scan.files, scan.conversions))
    assert conversions["cats/rgb.png"] is None
    assert "CMYK" in conversions["cats/cmyk.jpg"] and "16-bit" in conversions["dogs/deep.png"]
    assert "white" in conversions["cats/alpha.png"] and "grayscale" in conversions["cats/gray.png"]
    heights_widths = dict(zip(scan.files, map(tuple, scan.sizes)))
    assert heights_widths["dogs/puppies/small.png"] == (4, 5)


def test_every_file_the_scan_accepts_loads_as_rgb(tmp_path):
    scan = scan_image_folder(bad_and_odd_folder(tmp_path / "set"), max_pixels=1_000_000)
    for rel, (h, w) in zip(scan.files, scan.sizes):
        img = data.load_image(scan.root / rel)
        assert img.dtype == np.uint8 and img.shape == (h, w, 3), rel


def test_scan_agrees_with_keras_on_classes_and_labels(tmp_path):
    import keras

    root = samples.write_dataset_folder(tmp_path / "fashion", "fashion_mnist", per_class=3)
    scan = scan_image_folder(root)
    ds = keras.utils.image_dataset_from_directory(root, shuffle=False, image_size=(28, 28), batch_size=64)
    assert scan.classes == ds.class_names
    assert [str(root / f) for f in scan.files] == ds.file_paths
    keras_labels = np.concatenate([y.numpy() for _, y in ds])
    np.testing.assert_array_equal(scan.labels, keras_labels)


def test_scan_progress_stop_and_errors(tmp_path):
    root = samples.write_seedlings_folder(tmp_path / "s", per_class=12, size=32)
    calls = []
    scan_image_folder(root, workers=1, on_progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (36, 36) and len(calls) > 1
    stopped = scan_image_folder(root, workers=1, should_stop=lambda: len(calls) > 2,
                                on_progress=lambda d, t: calls.append((d, t)))
    assert stopped.stopped and len(stopped.files) < 36
    with pytest.raises(CvcoreError, match="no class folders"):
        scan_image_folder(root / "grass")
    with pytest.raises(CvcoreError, match="more than 10 files"):
        scan_image_folder(root, max_files=10)
    with pytest.raises(CvcoreError, match="no folder"):
        scan_image_folder(tmp_path / "missing")


def test_counting_image_files_opens_nothing_and_agrees_with_the_scan(tmp_path):
    root = bad_and_odd_folder(tmp_path / "set")
    scan = scan_image_folder(root, max_pixels=1_000_000)
    # What the scan decodes: images in class folders, not links, hidden files, text files or loose files.
    decoded = len(scan.files) + sum(1 for rel, why in scan.unreadable
                                    if "/" in rel and "link" not in why and "extension" not in why)
    assert count_image_files(root) == decoded == 11
    assert count_image_files(root, stop_after=3) == 4 and count_image_files(root, stop_after=0) == 1
    (root / "cats" / "big.png").write_bytes(huge_png_header(30_000, 30_000))  # never opened, only counted
    assert count_image_files(root) == 12
    assert count_image_files(root / "empty") == 0
    with pytest.raises(CvcoreError, match="no folder"):
        count_image_files(tmp_path / "missing")
    with pytest.raises(CvcoreError, match="stop_after"):
        count_image_files(root, stop_after=-1)


def test_a_scan_round_trips_through_json(tmp_path):
    scan = scan_image_folder(bad_and_odd_folder(tmp_path / "set"), max_pixels=1_000_000)
    back = FolderScan.load(scan.save(tmp_path / "ws" / "scan.json"))
    assert back.root == scan.root and back.classes == scan.classes and back.files == scan.files
    np.testing.assert_array_equal(back.labels, scan.labels)
    np.testing.assert_array_equal(back.sizes, scan.sizes)
    assert back.sizes.shape == scan.sizes.shape and back.labels.dtype == scan.labels.dtype
    assert back.conversions == scan.conversions and back.file_stats == scan.file_stats
    assert back.unreadable == scan.unreadable and back.nested == scan.nested and back.counts == scan.counts
    assert back.seconds == scan.seconds and back.stopped == scan.stopped
    assert ImageDataset.from_scan(back).fingerprint() == ImageDataset.from_scan(scan).fingerprint()
    (tmp_path / "bad.json").write_text(json.dumps({**scan.to_json(), "labels": [0]}))
    with pytest.raises(CvcoreError, match="damaged"):
        FolderScan.load(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CvcoreError, match="Cannot read"):
        FolderScan.load(tmp_path / "bad.json")
    with pytest.raises(CvcoreError, match="Cannot read"):
        FolderScan.load(tmp_path / "missing.json")


def test_the_scan_job_writes_the_scan_and_returns_small_json(tmp_path):
    from cvcore.jobs import LocalContext, run_inline

    root = samples.write_seedlings_folder(tmp_path / "s", per_class=12, size=32)
    (root / "grass" / "notes.jpg").write_text("not an image")
    out = tmp_path / "ws" / "scans" / "s.json"
    ctx = LocalContext()
    result = run_inline("cvcore.folders:scan_job", {"root": str(root), "out": str(out)}, ctx)
    assert json.loads(json.dumps(result)) == result and len(json.dumps(result)) < 300  # no file lists
    assert result["out"] == str(out) and not result["stopped"]
    assert (result["classes"], result["files"], result["unreadable"]) == (3, 36, 1)
    assert ctx.progress == {"done": 37, "total": 37}  # the text file named .jpg is decoded too, and refused
    saved, direct = FolderScan.load(out), scan_image_folder(root)
    assert saved.files == direct.files and saved.counts == direct.counts and saved.unreadable == direct.unreadable
    assert saved.file_stats == direct.file_stats

    # Stop pressed: it ends early and writes nothing, so nothing half-checked is ever loaded.
    stopped_out = tmp_path / "ws" / "scans" / "stopped.json"
    stopped = run_inline("cvcore.folders:scan_job", {"root": str(root), "out": str(stopped_out)},
                         LocalContext(stop_after=1))
    assert stopped["stopped"] and stopped["out"] is None and stopped["files"] < 36 and not stopped_out.exists()
    with pytest.raises(CvcoreError, match="no class folders"):
        run_inline("cvcore.folders:scan_job", {"root": str(root / "grass"), "out": str(out)})


def test_dataset_roots_are_found_inside_wrapping_folders(tmp_path):
    raw = make_zip({"seedlings/train/a/1.png": png_bytes(), "seedlings/train/b/2.png": png_bytes(),
                    "seedlings/test/3.png": png_bytes(), "seedlings/valid/a/4.png": png_bytes()})
    out = extract_zip(raw, tmp_path / "x").root
    assert [p.relative_to(out).as_posix() for p in find_dataset_roots(out)] == [
        "seedlings", "seedlings/train", "seedlings/valid"]


def test_probe_image_refuses_what_load_image_refuses():
    with pytest.raises(InvalidImageError, match="pixels"):
        probe_image(huge_png_header(9000, 9000), max_pixels=1_000_000)
    assert probe_image(png_bytes("L")).conversion.startswith("grayscale")


# ============================================================================ the split


def test_split_is_stratified_seeded_and_an_index():
    labels = np.repeat(np.arange(4), [30, 20, 13, 1])
    val = make_split(labels, per_class=12, seed=3)
    assert [int(val[labels == c].sum()) for c in range(4)] == [12, 12, 12, 0]  # every class keeps a training image
    np.testing.assert_array_equal(val, make_split(labels, per_class=12, seed=3))
    assert not np.array_equal(val, make_split(labels, per_class=12, seed=4))
    frac = make_split(labels, fraction=0.25, seed=0)
    assert [int(frac[labels == c].sum()) for c in range(4)] == [8, 5, 3, 0]
    assert make_split(labels, fraction=0.0).sum() == 0


def test_one_class_growing_leaves_the_others_split_alone():
    labels = np.repeat([0, 1], [20, 20])
    grown = np.concatenate([labels, np.ones(5, int)])
    before, after = make_split(labels, per_class=5, seed=1), make_split(grown, per_class=5, seed=1)
    np.testing.assert_array_equal(before[:20], after[:20])


@pytest.mark.parametrize("kwargs, match", [
    (dict(per_class=-1), "per_class"), (dict(fraction=1.0), "fraction"), (dict(), "exactly one"),
    (dict(per_class=2, fraction=0.1), "exactly one"), (dict(per_class=1.5), "1.5"),
])
def test_split_arguments_are_checked(kwargs, match):
    with pytest.raises(CvcoreError, match=match):
        make_split([0, 0, 1, 1], **kwargs)


def test_the_user_files_never_move_and_the_manifest_round_trips(tmp_path):
    root = samples.write_seedlings_folder(tmp_path / "s", per_class=5, size=32)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    ds = ImageDataset.from_scan(scan_image_folder(root), per_class=2, seed=7)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert ds.counts == {"grass": (3, 2), "round-leaf": (3, 2), "rosette": (3, 2)}
    path = ds.save(tmp_path / "manifests" / "m.json")
    back = ImageDataset.load(path)
    assert back.fingerprint() == ds.fingerprint() and back.split == ds.split
    np.testing.assert_array_equal(back.validation, ds.validation)
    paths, labels = back.subset("validation")
    assert len(paths) == 6 and all(p.is_file() for p in paths) and sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2]
    assert back.image(0).shape == (32, 32, 3)


def test_the_fingerprint_changes_when_a_file_changes(tmp_path):
    root = samples.write_seedlings_folder(tmp_path / "s", per_class=2, size=32)
    first = ImageDataset.from_scan(scan_image_folder(root)).fingerprint()
    assert ImageDataset.from_scan(scan_image_folder(root)).fingerprint() == first
    target = root / "grass" / "0000.png"
    target.write_bytes(png_bytes(size=(33, 32)))
    assert ImageDataset.from_scan(scan_image_folder(root)).fingerprint() != first


def test_a_damaged_manifest_is_an_error(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"version": 1, "files": ["a"]}))
    with pytest.raises(CvcoreError, match="damaged"):
        ImageDataset.load(tmp_path / "m.json")
    (tmp_path / "n.json").write_text("{not json")
    with pytest.raises(CvcoreError, match="Cannot read"):
        ImageDataset.load(tmp_path / "n.json")


# ============================================================================ offline samples


def test_seedling_photos_are_reproducible_and_green_on_soil():
    img, mask = samples.seedling_photo(seed=5, size=96, kind="rosette")
    again, _ = samples.seedling_photo(seed=5, size=96, kind="rosette")
    np.testing.assert_array_equal(img, again)
    assert 0.02 < mask.mean() < 0.5
    leaves, soil = img[mask].astype(int), img[~mask].astype(int)
    assert (leaves[:, 1] > leaves[:, 0]).mean() > 0.9  # leaves: green over red
    assert (soil[:, 0] >= soil[:, 1]).mean() > 0.9  # soil: red over green
    with pytest.raises(CvcoreError, match="kind"):
        samples.seedling_photo(kind="cactus")


def test_demo_folders_are_written_once(tmp_path):
    root = samples.demo_folder("seedlings", tmp_path)
    stamp = (root / "grass" / "0000.png").stat().st_mtime_ns
    assert samples.demo_folder("seedlings", tmp_path) == root
    assert (root / "grass" / "0000.png").stat().st_mtime_ns == stamp
    assert len(list(root.glob("*/*.png"))) == 120
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half-written leftovers


def test_a_derived_folder_keeps_the_split_of_its_source(tmp_path):
    src = samples.write_seedlings_folder(tmp_path / "src", per_class=6, size=32)
    original = ImageDataset.from_scan(scan_image_folder(src), per_class=2, seed=3)
    derived_root = tmp_path / "derived"
    for i, rel in enumerate(original.files):  # as a folder run writes them: .png, or x_png.png when taken
        out = derived_root / (rel.replace(".png", "_png.png") if i % 2 else rel)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes((src / rel).read_bytes())
    (derived_root / "grass" / "extra.png").write_bytes((src / original.files[0]).read_bytes())
    derived = ImageDataset.from_scan_like(scan_image_folder(derived_root), original, name="cleaned")
    by_name = dict(zip(derived.files, derived.validation.tolist()))
    for i, (rel, val) in enumerate(zip(original.files, original.validation.tolist())):
        assert by_name[rel.replace(".png", "_png.png") if i % 2 else rel] == val
    assert by_name["grass/extra.png"] is False  # no source: training
    assert derived.source == "derived" and derived.split["derived_from"] == original.name

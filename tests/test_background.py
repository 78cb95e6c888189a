"""cvcore.background: the chapter's colour distance, plant masks, and background removal over folders."""
import hashlib
import io
import math
import zipfile

import numpy as np
import pytest
from PIL import Image

from cvcore import background as bg
from cvcore.errors import CvcoreError
from cvcore.samples import SEEDLING_CLASSES, seedling_photo

KINDS = list(SEEDLING_CLASSES)
SEEDS = range(6)


def redmean(c1, c2):
    """The seed's formula, written out in plain Python floats."""
    rmean = (c1[0] + c2[0]) / 2
    dr, dg, db = (c1[i] - c2[i] for i in range(3))
    return math.sqrt((2 + rmean / 256) * dr * dr + 4 * dg * dg + (2 + (255 - rmean) / 256) * db * db)


@pytest.fixture(scope="module")
def photos():
    return {(kind, seed): seedling_photo(seed=seed, size=256, kind=kind) for kind in KINDS for seed in SEEDS}


# ----------------------------------------------------------------------------- color_distance


def test_color_distance_hand_computed_values():
    img = np.array([[[10, 20, 30], [0, 0, 0], [255, 255, 255]],
                    [[200, 100, 50], [70, 120, 40], [0, 255, 0]]], np.uint8)
    d = bg.color_distance(img, (10, 20, 30))
    assert d.dtype == np.float32 and d.shape == (2, 3)
    # (10, 20, 30) to black: r̄ = 5 -> (2 + 5/256)·100 + 4·400 + (2 + 250/256)·900 = 4480.86...
    assert d[0, 1] == pytest.approx(math.sqrt(201.953125 + 1600 + 2678.90625), rel=1e-6)
    assert d[0, 1] == pytest.approx(66.9393, abs=1e-3)
    for (i, j) in np.ndindex(2, 3):
        assert d[i, j] == pytest.approx(redmean(img[i, j].astype(float), (10, 20, 30)), rel=1e-5)
    # black to white: r̄ = 127.5, ((2 + 127.5/256) + 4 + (2 + 127.5/256))·255² = (8 + 255/256)·255², about 765
    top = bg.color_distance(np.zeros((1, 1, 3), np.uint8), (255, 255, 255))[0, 0]
    assert top == pytest.approx(255 * math.sqrt(8 + 255 / 256), rel=1e-6) and 764 < top < 765


def test_color_distance_is_zero_for_the_same_colour_and_weighs_green_most():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    for (i, j) in [(0, 0), (2, 3), (4, 6)]:
        d = bg.color_distance(img, tuple(int(v) for v in img[i, j]))
        assert d[i, j] == 0 and (d >= 0).all()
    grey = np.full((1, 1, 3), 128, np.uint8)
    by = {c: float(bg.color_distance(grey, tuple(128 + 20 * (k == c) for k in range(3)))[0, 0]) for c in range(3)}
    assert by[1] > by[0] and by[1] > by[2]  # a step in green counts most (weight 4)


@pytest.mark.parametrize("img, rgb, match", [
    (np.zeros((4, 4, 3), np.float32), (0, 0, 0), "dtype float32"),
    (np.zeros((4, 4), np.uint8), (0, 0, 0), r"shape \(4, 4\)"),
    (np.zeros((4, 4, 4), np.uint8), (0, 0, 0), r"shape \(4, 4, 4\)"),
    (np.zeros((4, 4, 3), np.uint8), (0, 0), r"received \(0, 0\)"),
    (np.zeros((4, 4, 3), np.uint8), (0, 300, 0), r"rgb\[1\].*received 300"),
    (np.zeros((4, 4, 3), np.uint8), (0, float("nan"), 0), r"rgb\[1\].*nan"),
    (np.zeros((4, 4, 3), np.uint8), "green", r"rgb.*'green'"),
])
def test_color_distance_refuses_bad_input_naming_it(img, rgb, match):
    with pytest.raises(bg.BackgroundError, match=match):
        bg.color_distance(img, rgb)


def test_luv_distance_units():
    white, black = np.full((1, 1, 3), 255, np.uint8), (0, 0, 0)
    assert bg.luv_distance(white, black)[0, 0] == pytest.approx(100, abs=0.05)  # L* 100 vs 0
    assert bg.luv_distance(white, black, lightness_weight=0)[0, 0] == pytest.approx(0, abs=0.05)  # both achromatic
    assert bg.luv_distance(white, (255, 255, 255)).dtype == np.float32


# ----------------------------------------------------------------------------- masks


@pytest.mark.parametrize("method", bg.METHODS)
def test_each_method_gives_a_bool_mask(method, photos):
    img, _ = photos[("round-leaf", 0)]
    mask = bg.plant_mask(img, method)
    assert mask.dtype == bool and mask.shape == img.shape[:2]
    assert 0 < mask.sum() < mask.size


@pytest.mark.parametrize("method", ["rgb", "cieluv", "hsv"])
@pytest.mark.parametrize("kind", KINDS)
def test_colour_methods_find_the_leaves(method, kind, photos):
    scores = [bg.iou(bg.plant_mask(photos[(kind, s)][0], method, median=5), photos[(kind, s)][1]) for s in SEEDS]
    assert min(scores) >= 0.8, scores
    assert np.mean(scores) >= 0.9, scores


def plant_rect(truth, pad=12):
    ys, xs = np.nonzero(truth)
    h, w = truth.shape
    x0, y0 = max(int(xs.min()) - pad, 0), max(int(ys.min()) - pad, 0)
    x1, y1 = min(int(xs.max()) + pad, w - 1), min(int(ys.max()) + pad, h - 1)
    return x0, y0, x1 - x0 + 1, y1 - y0 + 1


@pytest.mark.parametrize("kind", KINDS)
def test_grabcut_with_a_rectangle_around_the_plant(kind, photos):
    scores = []
    for s in SEEDS[:3]:
        img, truth = photos[(kind, s)]
        scores.append(bg.iou(bg.plant_mask(img, "grabcut", rect=plant_rect(truth), iterations=3), truth))
    assert min(scores) >= 0.6, scores


def test_hsv_uses_degrees_and_percent_and_wraps_through_red():
    img = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 0, 128]]], np.uint8)  # 0, 120, 240, ~330 deg
    green = bg.plant_mask(img, "hsv", hue=(100, 140), saturation=(50, 100), value=(50, 100))
    assert green.tolist() == [[False, True, False, False]]
    reds = bg.plant_mask(img, "hsv", hue=(300, 20), saturation=(50, 100), value=(50, 100))  # low > high: wraps
    assert reds.tolist() == [[True, False, False, True]]
    assert not bg.plant_mask(img, "hsv", hue=(0, 360), saturation=(0, 100), value=(0, 40)).any()  # all bright


def test_rgb_targets_and_thresholds_are_strict():
    img = np.array([[[70, 120, 40], [80, 120, 40]]], np.uint8)
    d = float(bg.color_distance(img, (70, 120, 40))[0, 1])
    assert bg.plant_mask(img, "rgb", targets=[((70, 120, 40), d)]).tolist() == [[True, False]]  # distance < threshold
    assert bg.plant_mask(img, "rgb", targets=[((70, 120, 40), d + 0.01)]).tolist() == [[True, True]]
    two = [((0, 0, 0), 1), ((80, 120, 40), 1)]  # any target: masks ORed
    assert bg.plant_mask(img, "rgb", targets=two).tolist() == [[False, True]]


def test_remove_background_blacks_out_the_soil_and_keeps_the_leaves(photos):
    img, truth = photos[("round-leaf", 1)]
    out = bg.remove_background(img, truth, median=0)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert (out[~truth] == 0).all() and (out[truth] == img[truth]).all()
    mask = bg.plant_mask(img, "rgb")
    cleaned = bg.remove_background(img, mask)  # the default median of 9
    kept = cleaned.any(axis=2)
    assert bg.iou(kept, truth) > 0.8
    assert not np.shares_memory(out, img)


def test_median_semantics():
    m = np.zeros((20, 20), bool)
    m[5:15, 5:15] = True  # a square ...
    m[1, 1] = True  # ... a speck of soil ...
    m[9, 9] = False  # ... and a pinhole
    for none in (0, 1):
        assert (bg.clean_mask(m, none) == m).all()
    cleaned = bg.clean_mask(m, 3)
    assert cleaned.dtype == bool and not cleaned[1, 1] and cleaned[9, 9] and cleaned[7:13, 7:13].all()
    img = np.full((20, 20, 3), 90, np.uint8)
    assert bg.remove_background(img, m, median=3)[1, 1].tolist() == [0, 0, 0]
    assert bg.remove_background(img, m, median=1)[1, 1].tolist() == [90, 90, 90]
    assert (bg.plant_mask(img, "hsv", median=3) == bg.clean_mask(bg.plant_mask(img, "hsv"), 3)).all()


@pytest.mark.parametrize("median", [2, 4, -1, 3.5, 101, "5", True])
def test_bad_median_is_refused_naming_the_value(median):
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(bg.BackgroundError, match=rf"`median`.*received {median!r}"):
        bg.remove_background(img, np.zeros((8, 8), bool), median=median)
    with pytest.raises(bg.BackgroundError, match=rf"`median`.*received {median!r}"):
        bg.plant_mask(img, "rgb", median=median)


@pytest.mark.parametrize("method, params, match", [
    ("lab", {}, r"`method`.*'lab'"),
    ("rgb", {"targets": []}, r"`targets` is empty"),
    ("rgb", {"targets": [((0, 0, 0), 0)]}, r"threshold.*received 0"),
    ("rgb", {"targets": [((0, 0, 0), 900)]}, r"threshold.*received 900"),
    ("rgb", {"targets": [((0, 0, 256), 50)]}, r"colour\[2\].*received 256"),
    ("rgb", {"targets": [(0, 0, 0)]}, r"targets\[0\].*pair.*received \(0, 0, 0\)"),
    ("rgb", {"hue": (0, 10)}, r"unknown parameter\(s\) hue"),
    ("cieluv", {"lightness_weight": 2}, r"`lightness_weight`.*received 2"),
    ("hsv", {"saturation": (80, 20)}, r"`saturation`.*low <= high.*\(80, 20\)"),
    ("hsv", {"hue": (0, 400)}, r"hue high.*received 400"),
    ("grabcut", {"iterations": 0}, r"`iterations`.*received 0"),
    ("grabcut", {"rect_fraction": (0, 0, 1, 1)}, r"covers the whole image"),
    ("grabcut", {"rect_fraction": (0.5, 0.5, 0.6, 0.2)}, r"inside the image"),
])
def test_bad_parameters_are_refused_naming_the_value(method, params, match):
    img = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(bg.BackgroundError, match=match):
        bg.plant_mask(img, method, **params)
    assert issubclass(bg.BackgroundError, CvcoreError) and issubclass(bg.BackgroundError, ValueError)


def test_grabcut_rectangles_in_pixels_are_checked_against_the_image():
    img, _ = seedling_photo(seed=0, size=64)
    with pytest.raises(bg.BackgroundError, match=r"reaches outside the 64 x 64 image"):
        bg.plant_mask(img, "grabcut", rect=(10, 10, 60, 20))
    with pytest.raises(bg.BackgroundError, match=r"covers the whole image"):
        bg.plant_mask(img, "grabcut", rect=(0, 0, 64, 64))
    assert bg.rect_from_fraction((0.1, 0.1, 0.8, 0.8), (64, 128)) == (13, 6, 102, 51)


def test_targets_from_a_table():
    rows = [{"R": "70", "G": 120, "B": 40.0, "threshold": "70"}, {"R": None, "G": None, "B": "", "threshold": None}]
    assert bg.targets_from_rows(rows) == (((70.0, 120.0, 40.0), 70.0),)  # empty rows are skipped
    with pytest.raises(bg.BackgroundError, match=r"row 2, column G is 'abc'"):
        bg.targets_from_rows([rows[0], {"R": 1, "G": "abc", "B": 2, "threshold": 3}])
    with pytest.raises(bg.BackgroundError, match=r"row 1, column B has no number"):
        bg.targets_from_rows([{"R": 1, "G": 2, "B": float("nan"), "threshold": 3}])
    with pytest.raises(bg.BackgroundError, match=r"row 1, column threshold is 500"):
        bg.targets_from_rows([{"R": 1, "G": 2, "B": 3, "threshold": 500}], max_threshold=bg.MAX_LUV_THRESHOLD)
    with pytest.raises(bg.BackgroundError, match=r"empty"):
        bg.targets_from_rows([])


def test_defaults_are_described():
    text = bg.describe_defaults()
    assert set(text) == set(bg.METHODS)
    assert "redmean" in text["rgb"] and "degrees" in text["hsv"] and "ΔE*uv" in text["cieluv"]
    for method in bg.METHODS:
        assert set(bg.default_params(method)) >= {"median"}
    assert bg.default_params("rgb")["targets"] == tuple(((tuple(map(float, c)), t) for c, t in bg.DEFAULT_TARGETS))


def test_overlay_iou_and_kept_fraction():
    img = np.zeros((2, 2, 3), np.uint8)
    mask = np.array([[True, False], [False, False]])
    out = bg.overlay(img, mask, (200, 0, 100), 0.5)
    assert out[0, 0].tolist() == [100, 0, 50] and out[1, 1].tolist() == [0, 0, 0]
    assert bg.kept_fraction(mask) == 0.25
    assert bg.iou(mask, mask) == 1.0 and bg.iou(mask, ~mask) == 0.0 and bg.iou(~mask & mask, mask & ~mask) == 1.0


# ----------------------------------------------------------------------------- folders


def write_png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, "PNG")


@pytest.fixture
def folder(tmp_path):
    """A small data set: two classes of seedlings (PNG and JPEG), a text file named .jpg, a truncated PNG."""
    src = tmp_path / "seedlings"
    for i in range(3):
        write_png(src / "round-leaf" / f"{i}.png", seedling_photo(seed=i, size=64)[0])
    (src / "grass").mkdir()
    Image.fromarray(seedling_photo(seed=9, size=64, kind="grass")[0]).save(src / "grass" / "a.jpg", "JPEG", quality=95)
    write_png(src / "grass" / "a.png", seedling_photo(seed=8, size=64, kind="grass")[0])  # the same stem as a.jpg
    (src / "grass" / "notes.jpg").write_text("this is not a picture")
    buf = io.BytesIO()
    Image.fromarray(seedling_photo(seed=7, size=64)[0]).save(buf, "PNG")
    (src / "grass" / "broken.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    files = sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file())
    return src, files


def hashes(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_folder_writes_pngs_into_a_new_folder_and_reports_bad_files(folder, tmp_path):
    src, files = folder
    before = hashes(src)
    progress = []
    dest = tmp_path / "out" / "no-background"
    summary = bg.remove_background_folder(files, src, dest, method="rgb", params={}, median=5,
                                          on_progress=lambda done, total: progress.append((done, total)))
    assert hashes(src) == before  # the inputs are never modified
    assert summary.dest == dest.resolve() and summary.total == len(files) == 7 and not summary.stopped
    assert sorted(summary.written) == ["grass/a.png", "grass/a_jpg.png", "round-leaf/0.png", "round-leaf/1.png",
                                       "round-leaf/2.png"]
    skipped = dict(summary.skipped)
    assert set(skipped) == {"grass/notes.jpg", "grass/broken.png"}
    assert "not an image" in skipped["grass/notes.jpg"]
    assert "truncated or damaged" in skipped["grass/broken.png"]
    assert progress == [(i, 7) for i in range(1, 8)]
    assert summary.seconds > 0 and "5 of 7" in summary.describe() and "2 skipped" in summary.describe()
    out = np.asarray(Image.open(dest / "round-leaf" / "0.png"))
    img, truth = seedling_photo(seed=0, size=64)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (out[~out.any(axis=2)] == 0).all() and bg.iou(out.any(axis=2), truth) > 0.7
    names = sorted(zipfile.ZipFile(io.BytesIO(bg.zip_folder(dest))).namelist())
    assert names == sorted(summary.written)


def test_folder_refuses_to_write_over_or_inside_the_inputs(folder, tmp_path):
    src, files = folder
    before = hashes(src)
    with pytest.raises(bg.BackgroundError, match="is the source folder"):
        bg.remove_background_folder(files, src, src)
    with pytest.raises(bg.BackgroundError, match="inside the source folder"):
        bg.remove_background_folder(files, src, src / "grass" / "out")
    with pytest.raises(bg.BackgroundError, match="inside `dest_root`"):
        bg.remove_background_folder(files, src, tmp_path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(bg.BackgroundError, match="is not empty"):
        bg.remove_background_folder(files, src, busy)
    with pytest.raises(bg.BackgroundError, match=r"`median`.*received 4"):
        bg.remove_background_folder(files, src, tmp_path / "new", median=4)
    with pytest.raises(bg.BackgroundError, match=r"unknown parameter"):
        bg.remove_background_folder(files, src, tmp_path / "new", method="hsv", params={"targets": []})
    assert not (tmp_path / "new").exists()  # bad parameters are refused before anything is written
    assert hashes(src) == before and (busy / "keep.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(bg.remove_background_folder(files[:1], src, empty).written) == 1  # an empty folder is fine


def test_folder_skips_paths_that_leave_the_source(folder, tmp_path):
    src, _ = folder
    (tmp_path / "secret.png").write_bytes(b"")
    summary = bg.remove_background_folder(["../secret.png", "/etc/passwd", "round-leaf/0.png"], src,
                                          tmp_path / "out")
    assert summary.written == ["round-leaf/0.png"]
    assert [p for p, _ in summary.skipped] == ["../secret.png", "/etc/passwd"]
    assert all("leaves the source folder" in reason for _, reason in summary.skipped)


def test_folder_stops_early_and_keeps_what_it_wrote(folder, tmp_path):
    src, files = folder
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 2

    summary = bg.remove_background_folder(files, src, tmp_path / "out", method="hsv", median=3,
                                          should_stop=should_stop)
    assert summary.stopped and len(summary.written) + len(summary.skipped) == 2
    assert len(list((tmp_path / "out").rglob("*.png"))) == len(summary.written)
    assert summary.describe().startswith("Stopped early")


def test_folder_grabcut_with_a_rectangle_in_fractions(folder, tmp_path):
    src, files = folder
    summary = bg.remove_background_folder(files[-3:], src, tmp_path / "out", method="grabcut",
                                          params={"rect_fraction": (0.15, 0.15, 0.7, 0.7), "iterations": 2})
    assert summary.written == ["round-leaf/0.png", "round-leaf/1.png", "round-leaf/2.png"]


def test_folder_stops_before_passing_its_byte_limit(folder, tmp_path):
    src, files = folder
    pngs = [f for f in files if f.startswith("round-leaf")]
    one = bg.remove_background_folder(pngs[:1], src, tmp_path / "one").bytes_written
    summary = bg.remove_background_folder(pngs, src, tmp_path / "out", max_bytes=2 * one + 1)
    assert summary.full and summary.stopped and len(summary.written) in (1, 2)
    assert summary.bytes_written <= 2 * one + 1 and "space allowed was full" in summary.describe()
    assert sum(p.stat().st_size for p in (tmp_path / "out").rglob("*.png")) == summary.bytes_written

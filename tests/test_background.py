"""cvcore.background: the chapter's colour distance, plant masks, and background removal over folders."""
import hashlib
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from cvcore import background as bg
from cvcore.errors import CvcoreError
from cvcore.samples import SEEDLING_CLASSES, seedling_photo

KINDS = list(SEEDLING_CLASSES)
SEEDS = range(6)


# The chapter's four greens and thresholds, as it types them.
CHAPTER_TARGETS = (((71, 86, 38), 1600), ((65, 79, 19), 1600), ((95, 106, 56), 1600), ((56, 63, 43), 500))


def chapter_distance(e1, e2):
    """The chapter's C function, transcribed line by line in plain Python integers."""
    rmean = (int(e1[0]) + int(e2[0])) // 2  # C: (long)e1.r + (long)e2.r) / 2, non-negative
    r = int(e1[0]) - int(e2[0])
    g = int(e1[1]) - int(e2[1])
    b = int(e1[2]) - int(e2[2])
    return (((512 + rmean) * r * r) >> 8) + 4 * g * g + (((767 - rmean) * b * b) >> 8)


@pytest.fixture(scope="module")
def photos():
    return {(kind, seed): seedling_photo(seed=seed, size=256, kind=kind) for kind in KINDS for seed in SEEDS}


def chapter_green_photo(seed, size=160):
    """Leaves of the chapter's own greens on brown soil, and where they are: made here, independently of
    cvcore.samples. Soil: a brown of random shade, blotches at two scales and grain. Leaves: ellipses, each in
    one of the four greens (a few levels off, a little lighter or darker), shaded across the leaf, with noise."""
    import cv2

    rng = np.random.default_rng(1000 + seed)
    img = np.empty((size, size, 3), np.float32)
    img[:] = np.array([122, 86, 58], np.float32) * rng.uniform(0.8, 1.2)
    for sigma, amp in ((size / 10, 22.0), (size / 50, 10.0)):
        blotch = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), sigma)
        img += amp * (blotch / (blotch.std() + 1e-6))[:, :, None]
    img += rng.normal(0, 4, img.shape).astype(np.float32)  # grain, independent in each channel
    truth = np.zeros((size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    for i in range(int(rng.integers(4, 8))):
        leaf = np.zeros((size, size), np.uint8)
        centre = (int(rng.integers(size // 5, 4 * size // 5)), int(rng.integers(size // 5, 4 * size // 5)))
        axes = (int(rng.integers(size // 12, size // 6)), int(rng.integers(size // 30, size // 12)))
        cv2.ellipse(leaf, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        colour = (np.array(CHAPTER_TARGETS[i % 4][0], np.float32) + rng.normal(0, 3, 3)) * rng.uniform(0.93, 1.07)
        light = rng.uniform(0, 2 * np.pi)
        shade = 1 + 0.1 * ((xx - centre[0]) * np.cos(light) + (yy - centre[1]) * np.sin(light)) / max(axes)
        on = leaf > 0
        img[on] = colour * shade[on][:, None]
        truth |= leaf
    on = truth > 0
    img[on] += rng.normal(0, 3, (int(on.sum()), 3)).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 0.5)  # soft edges
    return np.clip(img, 0, 255).round().astype(np.uint8), on


# ----------------------------------------------------------------------------- color_distance


def test_color_distance_hand_computed_values():
    img = np.array([[[10, 20, 30], [0, 0, 0], [255, 255, 255]],
                    [[200, 100, 50], [71, 86, 38], [0, 255, 0]]], np.uint8)
    d = bg.color_distance(img, (10, 20, 30))
    assert d.dtype == np.int64 and d.shape == (2, 3)
    # black to (10, 20, 30): rmean = 10 // 2 = 5; (517·100) >> 8 = 201, 4·400 = 1600, (762·900) >> 8 = 2678
    assert d[0, 1] == 201 + 1600 + 2678 == 4479
    assert d[0, 0] == 0
    for (i, j) in np.ndindex(2, 3):
        assert d[i, j] == chapter_distance(img[i, j], (10, 20, 30))
    # black to white: rmean = 127; (639·65025) >> 8 = 162308, 4·65025 = 260100, (640·65025) >> 8 = 162562
    top = bg.color_distance(np.zeros((1, 1, 3), np.uint8), (255, 255, 255))[0, 0]
    assert top == 162308 + 260100 + 162562 == 584970 and top < bg.MAX_RGB_THRESHOLD
    # 1600 is 40 on the square-rooted scale: a step of 20 in green alone is exactly 4·400
    assert bg.color_distance(np.array([[[71, 106, 38]]], np.uint8), (71, 86, 38))[0, 0] == 1600


def test_color_distance_is_the_chapters_formula_on_random_pixels():
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    img[0, :4] = [(0, 0, 0), (255, 255, 255), (255, 0, 255), (0, 255, 0)]  # differences that wrap in uint8
    for target in [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(12)] + [(0, 0, 0), (255, 255, 255)]:
        d = bg.color_distance(img, target)
        assert d.dtype == np.int64 and d.shape == img.shape[:2]
        expected = [[chapter_distance(img[i, j], target) for j in range(img.shape[1])] for i in range(img.shape[0])]
        assert d.tolist() == expected, target
    wrap = bg.color_distance(np.array([[[0, 0, 0]]], np.uint8), (255, 255, 255))[0, 0]
    assert wrap == chapter_distance((0, 0, 0), (255, 255, 255)) == 584970  # not the uint8 difference 1
    float_target = bg.color_distance(img, (70.0, 86.0, 38.0))  # whole floats are accepted; 70.5 is not (below)
    assert (float_target == bg.color_distance(img, (70, 86, 38))).all()


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
    (np.zeros((4, 4, 3), np.uint8), (70.5, 86, 38), r"`rgb\[0\]` must be an integer from 0 to 255; received 70\.5"),
    (np.zeros((4, 4, 3), np.uint8), (70, True, 38), r"`rgb\[1\]`.*received True"),
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


def test_the_defaults_are_the_chapters():
    assert bg.DEFAULT_TARGETS == tuple((c, float(t)) for c, t in CHAPTER_TARGETS)
    assert bg.default_params("rgb")["targets"] == bg.DEFAULT_TARGETS
    assert all(isinstance(v, int) for c, _ in bg.default_params("rgb")["targets"] for v in c)
    assert bg.CHAPTER_MEDIAN == 9
    chapter = bg.TARGET_PRESETS["rgb"][bg.CHAPTER_PRESET]
    assert chapter == {"targets": bg.DEFAULT_TARGETS, "median": 9}
    assert next(iter(bg.TARGET_PRESETS["rgb"])) == bg.CHAPTER_PRESET  # the first preset, the page's default
    assert [c for c, _ in bg.DEFAULT_LUV_TARGETS] == [c for c, _ in CHAPTER_TARGETS]
    # today's brighter greens stay beside them, thresholds squared into the chapter's units
    assert bg.TARGET_PRESETS["rgb"][bg.BRIGHT_PRESET]["targets"] == bg.BRIGHT_TARGETS
    assert [t for _, t in bg.BRIGHT_TARGETS] == [70.0 ** 2, 110.0 ** 2, 95.0 ** 2, 80.0 ** 2]


@pytest.mark.parametrize("method", ["rgb", "cieluv", "hsv"])
def test_defaults_find_leaves_of_the_chapters_greens_on_brown_soil(method):
    scores = []
    for seed in range(10):
        img, truth = chapter_green_photo(seed)
        assert 0.03 < truth.mean() < 0.4
        scores.append(bg.iou(bg.plant_mask(img, method=method), truth))  # no other arguments
    assert min(scores) >= 0.85, np.round(scores, 3)


def test_the_chapters_thresholds_keep_its_greens_and_drop_the_soil():
    greens = np.array([[c for c, _ in CHAPTER_TARGETS]], np.uint8)
    assert bg.plant_mask(greens, "rgb").all()
    soil = np.array([[[118, 88, 62], [90, 66, 45], [140, 110, 80], [60, 45, 30]]], np.uint8)
    assert not bg.plant_mask(soil, "rgb").any()
    assert not bg.plant_mask(soil, "cieluv").any() and not bg.plant_mask(soil, "hsv").any()


@pytest.mark.parametrize("method", ["rgb", "cieluv", "hsv"])
@pytest.mark.parametrize("kind", KINDS)
def test_colour_methods_find_the_leaves_of_the_synthetic_seedlings(method, kind, photos):
    for median in (0, bg.CHAPTER_MEDIAN):  # the raw mask, and the chapter's blur
        scores = [bg.iou(bg.plant_mask(photos[(kind, s)][0], method, median=median), photos[(kind, s)][1])
                  for s in SEEDS]
        assert min(scores) >= 0.85, (median, scores)
        assert np.mean(scores) >= 0.9, (median, scores)


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
    img = np.array([[[71, 86, 38], [71, 106, 38]]], np.uint8)
    d = int(bg.color_distance(img, (71, 86, 38))[0, 1])
    assert d == 1600
    assert bg.plant_mask(img, "rgb", targets=[((71, 86, 38), 1600)]).tolist() == [[True, False]]  # distance < threshold
    assert bg.plant_mask(img, "rgb", targets=[((71, 86, 38), 1601)]).tolist() == [[True, True]]
    two = [((0, 0, 0), 1), ((71, 106, 38), 1)]  # any target: masks ORed
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
    ("rgb", {"targets": [((0, 0, 0), 700_000)]}, r"threshold.*at most 600000; received 700000"),
    ("rgb", {"targets": [((0, 0, 256), 50)]}, r"colour\[2\].*received 256"),
    ("rgb", {"targets": [((70.5, 86, 38), 1600)]}, r"`targets\[0\] colour\[0\]`.*integer.*received 70\.5"),
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
    whole = bg.targets_from_rows([{"R": "71", "G": 86.0, "B": 38, "threshold": "1600"}], integers=True)
    assert whole == (((71, 86, 38), 1600.0),) and all(type(v) is int for v in whole[0][0])
    with pytest.raises(bg.BackgroundError, match=r"row 1, column B is 38\.5; type a whole number"):
        bg.targets_from_rows([{"R": 71, "G": 86, "B": 38.5, "threshold": 1600}], integers=True)
    with pytest.raises(bg.BackgroundError, match=r"row 1, column threshold is 600001"):
        bg.targets_from_rows([{"R": 71, "G": 86, "B": 38, "threshold": 600_001}])
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
    assert "585,000" in text["rgb"] and "1600" in text["rgb"] and "√" not in text["rgb"]  # the chapter's units
    assert "(56, 63, 43) below 500" in text["rgb"]
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


def test_the_folder_job_runs_as_a_worker_would_and_returns_its_summary_as_json(folder, tmp_path):
    import json

    from cvcore.jobs import LocalContext, run_inline

    src, files = folder
    ctx = LocalContext()
    config = {"files": files, "root": str(src), "dest": str(tmp_path / "out"), "method": "rgb", "params": {},
              "median": 5, "max_bytes": None}
    result = run_inline("cvcore.background:remove_background_folder_job", config, ctx)
    assert json.loads(json.dumps(result)) == result  # plain JSON: it travels back through Ray
    summary = bg.FolderSummary.from_json(result)
    assert summary.dest == (tmp_path / "out").resolve() and summary.total == 7 and not summary.stopped
    assert sorted(summary.written) == ["grass/a.png", "grass/a_jpg.png", "round-leaf/0.png", "round-leaf/1.png",
                                       "round-leaf/2.png"]
    assert dict(summary.skipped).keys() == {"grass/notes.jpg", "grass/broken.png"}
    assert ctx.progress == {"done": 7, "total": 7} and ctx.reports == 7  # one report per image
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png")) == sorted(summary.written)
    assert bg.FolderSummary.from_json(summary.to_json()) == summary

    # The validated parameters the page sends (tuples become lists in JSON) are taken as they are.
    params = json.loads(json.dumps(bg.validate_params("rgb", median=0)))
    again = run_inline("cvcore.background:remove_background_folder_job",
                       {**config, "dest": str(tmp_path / "again"), "params": params})
    assert sorted(again["written"]) == sorted(summary.written)


def test_the_folder_job_stops_when_asked_and_keeps_what_it_wrote(folder, tmp_path):
    from cvcore.jobs import LocalContext, run_inline

    src, files = folder
    ctx = LocalContext(stop_after=2)  # Stop pressed after the second image
    result = run_inline("cvcore.background:remove_background_folder_job",
                        {"files": files, "root": str(src), "dest": str(tmp_path / "out"), "method": "hsv",
                         "median": 3}, ctx)
    summary = bg.FolderSummary.from_json(result)
    assert summary.stopped and not summary.full and len(summary.written) + len(summary.skipped) == 2
    assert len(list((tmp_path / "out").rglob("*.png"))) == len(summary.written)
    assert summary.describe().startswith("Stopped early")
    with pytest.raises(bg.BackgroundError, match=r"`median`.*received 4"):
        run_inline("cvcore.background:remove_background_folder_job",
                   {"files": files, "root": str(src), "dest": str(tmp_path / "new"), "median": 4})
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("damaged", [None, {}, {"dest": "x", "total": "many", "written": [], "skipped": [],
                                                "stopped": False, "seconds": 0}, {"dest": "x", "total": 1,
                                                "written": [], "skipped": [["only a path"]], "stopped": False,
                                                "seconds": 0}])
def test_a_damaged_folder_summary_is_an_error(damaged):
    with pytest.raises(bg.BackgroundError, match="summary is damaged"):
        bg.FolderSummary.from_json(damaged)


# ----------------------------------------------------------------------------- the offline demo


def test_synthetic_leaves_are_drawn_in_the_chapters_greens(photos):
    import cv2

    from cvcore.samples import LEAF_GREENS

    assert LEAF_GREENS == tuple(c for c, _ in CHAPTER_TARGETS)
    for (kind, seed), (img, truth) in photos.items():
        inner = cv2.erode(truth.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)  # away from the edges
        leaves = img[inner].astype(int)
        assert leaves[:, 1].mean() < 120 and (leaves[:, 1] > leaves[:, 0]).mean() > 0.97, (kind, seed)
        kept = bg.plant_mask(img, "rgb")[inner].mean()  # within the chapter's thresholds of its greens
        assert kept > 0.97, (kind, seed, kept)


def test_demo_folders_are_versioned_and_an_old_version_is_not_reused(tmp_path, monkeypatch):
    from cvcore import samples

    monkeypatch.setitem(samples.DEMO_FOLDERS, "seedlings",
                        (samples.DEMO_FOLDERS["seedlings"][0], dict(kind="seedlings", per_class=2, size=64)))
    old = tmp_path / "seedlings"  # written before demo folders had versions: bright greens
    (old / "grass").mkdir(parents=True)
    Image.fromarray(np.full((64, 64, 3), (80, 170, 55), np.uint8)).save(old / "grass" / "0000.png")
    (tmp_path / "seedlings-v1").mkdir()
    assert samples.demo_folder_name("seedlings") == f"seedlings-v{samples.DEMO_VERSIONS['seedlings']}"
    assert samples.DEMO_VERSIONS["seedlings"] >= 2
    root = samples.demo_folder("seedlings", tmp_path)
    assert root == tmp_path / samples.demo_folder_name("seedlings") != old
    assert sorted(p.name for p in tmp_path.iterdir()) == [root.name]  # the old versions are gone, no leftovers
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png")) == [
        f"{kind}/{i:04d}.png" for kind in sorted(KINDS) for i in range(2)]
    stamp = (root / "grass" / "0000.png").stat().st_mtime_ns
    again = samples.demo_folder("seedlings", tmp_path)  # this version is reused as it is
    assert again == root and (root / "grass" / "0000.png").stat().st_mtime_ns == stamp
    img = np.asarray(Image.open(root / "grass" / "0000.png"))
    assert img[:, :, 1].max() < 170  # the new, darker greens
    with pytest.raises(CvcoreError, match="Unknown demo data set 'cactus'"):
        samples.demo_folder_name("cactus")

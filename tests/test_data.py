"""cvcore.data: data sets offline, and untrusted images."""
import gzip
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from cvcore import data, images
from cvcore.errors import DatasetUnavailableError, InvalidImageError

FASHION = data.DEBIAN_FASHION_DIR


def png_bytes(arr, mode=None):
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, "PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------- data sets


def test_digits_look_like_mnist():
    (x, y), (xt, yt), names = data.load_dataset("digits")
    assert x.dtype == np.uint8 and x.shape[1:] == (28, 28) and xt.shape[1:] == (28, 28)
    assert len(x) + len(xt) == 1797 and names == [str(i) for i in range(10)]
    assert set(np.unique(yt)) == set(range(10))  # the split is stratified
    assert x[:, :4].max() == 0 and x.max() == 255  # drawn in the 20x20 centre, full range


@pytest.mark.skipif(not data._idx_folder_complete(FASHION), reason="needs Debian's dataset-fashion-mnist")
def test_fashion_mnist_from_debian_package():
    (x, y), (xt, yt), names = data.load_dataset("fashion_mnist")
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    assert names[0] == "T-shirt/top" and names[9] == "Ankle boot"
    assert np.bincount(yt).tolist() == [1000] * 10


def write_idx_folder(folder, n=20):
    rng = np.random.default_rng(0)
    for key, name in data._IDX_FILES.items():
        if key.startswith("x"):
            arr = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            header = struct.pack(">BBBBIII", 0, 0, 8, 3, n, 28, 28)
        else:
            arr = rng.integers(0, 10, n, dtype=np.uint8)
            header = struct.pack(">BBBBI", 0, 0, 8, 1, n)
        with gzip.open(folder / name, "wb") as fh:
            fh.write(header + arr.tobytes())


def test_mnist_from_a_local_idx_folder(tmp_path, monkeypatch):
    write_idx_folder(tmp_path)
    monkeypatch.setenv("CVCORE_MNIST_DIR", str(tmp_path))
    (x, y), (xt, yt), names = data.load_dataset("mnist")
    assert x.shape == (20, 28, 28) and yt.shape == (20,) and names[0] == "0"


def test_truncated_idx_is_reported(tmp_path):
    write_idx_folder(tmp_path)
    path = tmp_path / data._IDX_FILES["x_test"]
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(DatasetUnavailableError, match="truncated"):
        data.load_dataset("fashion_mnist", local_dir=tmp_path)


def test_failed_download_says_why_and_falls_back(monkeypatch):
    keras = pytest.importorskip("keras")
    monkeypatch.delenv("CVCORE_MNIST_DIR", raising=False)

    def offline():
        raise Exception("URL fetch failure on https://x/mnist.npz: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DatasetUnavailableError, match="Name or service not known"):
        data.load_dataset("mnist")
    (train, test, names), used, notice = data.load_dataset_or_fallback("mnist")
    assert used == "digits" and "could not be downloaded" in notice and "digits" in notice
    assert train[0].shape[1:] == (28, 28)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="'cifar'"):
        data.load_dataset("cifar")


def test_bundled_photos_are_rgb():
    for name in data.PHOTOS:
        img = data.load_photo(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


# ----------------------------------------------------------------------------- untrusted images


def test_load_image_from_bytes_path_and_file(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    raw = png_bytes(arr)
    (tmp_path / "a.png").write_bytes(raw)
    for source in (raw, tmp_path / "a.png", str(tmp_path / "a.png"), io.BytesIO(raw)):
        np.testing.assert_array_equal(data.load_image(source), arr)


@pytest.mark.parametrize(
    "mode, make",
    [
        ("L", lambda: Image.fromarray(np.full((4, 4), 100, np.uint8), "L")),
        ("P", lambda: Image.fromarray(np.full((4, 4, 3), 100, np.uint8)).convert("P")),
        ("RGBA", lambda: Image.fromarray(np.zeros((4, 4, 4), np.uint8), "RGBA")),
        ("CMYK", lambda: Image.new("CMYK", (4, 4), (0, 0, 0, 0))),
        ("I;16", lambda: Image.fromarray(np.full((4, 4), 65535, np.uint16))),
    ],
)
def test_modes_are_converted_to_rgb(mode, make):
    img = make()
    buf = io.BytesIO()
    img.save(buf, "TIFF" if mode == "CMYK" else "PNG")
    out = data.load_image(buf.getvalue())
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    if mode == "RGBA":  # fully transparent -> white background
        assert out.min() == 255
    if mode in ("CMYK", "I;16"):
        assert out.min() == 255


def test_text_file_named_jpg_is_refused(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_text("this is not a picture")
    with pytest.raises(InvalidImageError, match="not an image"):
        data.load_image(path)


def test_truncated_png_is_refused():
    raw = png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(InvalidImageError, match="truncated or damaged"):
        data.load_image(raw[: len(raw) // 2])


def huge_png_header(width, height):
    """A tiny file whose header claims width x height pixels: a decompression bomb."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [10_000, 60_000])
def test_decompression_bomb_is_refused_before_decoding(side):
    raw = huge_png_header(side, side)
    assert len(raw) < 1000
    with pytest.raises(InvalidImageError, match="pixels"):
        data.load_image(raw, max_pixels=1_000_000)


def test_byte_cap_and_empty_file():
    with pytest.raises(InvalidImageError, match="empty"):
        data.load_image(b"")
    with pytest.raises(InvalidImageError, match="over the limit"):
        data.load_image(b"x" * 2000, max_bytes=1000)


def test_grayscale_and_fit_within():
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[..., 1] = 255
    assert images.to_grayscale(rgb)[0, 0] == round(0.587 * 255)
    assert images.fit_within(rgb, 10).shape == (5, 10, 3)
    assert images.fit_within(rgb, 100) is rgb
    assert images.fit_within(np.zeros((300, 30), np.uint8), 100).shape == (100, 10)


def test_enlarge_keeps_pixels_square_and_sharp():
    digit = np.arange(6, dtype=np.uint8).reshape(2, 3)
    big = images.enlarge(digit, 10)
    assert big.shape == (6, 9) and big.dtype == np.uint8  # a factor of 10 // 3 = 3
    assert (big[:3, :3] == 0).all() and (big[3:, 6:] == 5).all()
    assert images.enlarge(np.zeros((4, 4, 3)), 6).shape == (4, 4, 3)  # 6 // 4 = 1: as it is
    with pytest.raises(InvalidImageError, match="received 0"):
        images.enlarge(digit, 0)
    with pytest.raises(InvalidImageError, match=r"received shape \(3,\)"):
        images.enlarge(np.zeros(3), 10)


def test_prepare_input():
    gray = np.full((2, 3), 255, np.uint8)
    assert images.prepare_input(gray, colour=True).shape == (2, 3, 3)
    x = images.prepare_input(np.zeros((2, 3, 3), np.uint8) + 51, colour=False, rescale=True)
    assert x.shape == (2, 3, 1) and x.dtype == np.float32 and x.max() == pytest.approx(0.2)
    assert images.prepare_input(gray, colour=False, rescale=False).max() == 255


def test_canvas_to_digit():
    canvas = np.zeros((280, 280, 4), np.uint8)
    assert images.canvas_to_digit(canvas) is None  # nothing drawn yet
    canvas[40:240, 130:150, :3] = 255  # a vertical stroke: a "1"
    canvas[..., 3] = 255
    digit = images.canvas_to_digit(canvas)
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert digit[14, 14] == 255 and digit[14, 2] == 0
    with pytest.raises(ValueError, match="canvas"):
        images.canvas_to_digit(np.zeros((28, 28)))

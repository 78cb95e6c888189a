"""cvcore.kernels: presets and typed cells."""
import numpy as np
import pytest

from cvcore import kernels as K
from cvcore.errors import KernelError


def test_textbook_3x3_presets():
    assert K.preset_kernel("sobel x").tolist() == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    assert K.preset_kernel("sobel y").tolist() == [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]
    assert K.preset_kernel("laplacian").tolist() == [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
    assert K.preset_kernel("sharpen").tolist() == [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]
    assert K.preset_kernel("emboss").tolist() == [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]
    assert K.preset_kernel("vertical line").tolist() == [[-1, 2, -1]] * 3
    np.testing.assert_allclose(K.preset_kernel("gaussian blur") * 16, [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


@pytest.mark.parametrize("name", K.PRESETS)
@pytest.mark.parametrize("size", [3, 5, (3, 4), (1, 5)])
def test_every_preset_exists_at_every_size(name, size):
    k = K.preset_kernel(name, size)
    assert k.shape == ((size, size) if isinstance(size, int) else size)
    assert np.all(np.isfinite(k))
    if name in ("box blur", "gaussian blur", "identity"):
        assert k.sum() == pytest.approx(1.0)
    if name in ("sobel x", "sobel y", "vertical line", "horizontal line", "laplacian"):
        assert k.sum() == pytest.approx(0.0)


def test_line_detectors_respond_to_their_own_direction():
    img = np.zeros((9, 9))
    img[:, 4] = 1.0  # a vertical line
    from cvcore.convolution import conv2d

    vertical = conv2d(img, K.preset_kernel("vertical line"))
    horizontal = conv2d(img, K.preset_kernel("horizontal line"))
    assert vertical.max() > 0 and vertical.max() > horizontal.max()


def test_parse_kernel_accepts_numbers_and_fractions():
    k = K.parse_kernel([["1", "2/4", "-3e-1"], [1, 0.5, " 4 "]])
    np.testing.assert_allclose(k, [[1, 0.5, -0.3], [1, 0.5, 4]])
    assert K.parse_kernel([["\u22121"]])[0, 0] == -1.0  # a typographic minus


@pytest.mark.parametrize(
    "cells, match",
    [
        ([["1", "x"]], "row 1, column 2 is 'x'"),
        ([["1"], [""]], "row 2, column 1 is empty"),
        ([["1/0"]], "division by zero"),
        ([["nan"]], "not a number"),
        ([["1", "2"], ["3"]], "different lengths"),
        ([[]], "empty"),
        ([["1"] * 16], "at most 15x15"),
        ([["__import__('os')"]], "not a number"),
    ],
)
def test_parse_kernel_names_the_bad_cell(cells, match):
    with pytest.raises(KernelError, match=match):
        K.parse_kernel(cells)


def test_unknown_preset_and_bad_size():
    with pytest.raises(KernelError, match="Unknown preset"):
        K.preset_kernel("blurry")
    with pytest.raises(KernelError, match="0x3"):
        K.preset_kernel("identity", (0, 3))


@pytest.mark.parametrize("name", K.PRESETS)
@pytest.mark.parametrize("size", [3, 5, (3, 4)])
def test_formatted_presets_parse_back_to_the_same_values(name, size):
    k = K.preset_kernel(name, size)
    cells = [[K.format_number(v) for v in row] for row in k]
    np.testing.assert_allclose(K.parse_kernel(cells), k, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", K.PRESETS)
@pytest.mark.parametrize("size", [3, 5, (3, 4)])
def test_written_presets_read_back_to_the_same_values(name, size):
    k = K.preset_kernel(name, size)
    text = K.format_kernel(k)
    assert len(text.splitlines()) == k.shape[0]
    np.testing.assert_allclose(K.parse_kernel_text(text, k.shape), k, rtol=1e-6, atol=1e-9)


def test_typed_rows_accept_spaces_commas_blank_lines_and_a_pasted_list():
    expected = [[1, 0.5], [-1, 0]]
    for text in ("1 1/2\n-1 0", "1, 0.5;\n\n  -1,0  \n", "[[1, 0.5], [-1, 0]]", "[[1, 0.5],\n [\u22121, 0]]"):
        np.testing.assert_allclose(K.parse_kernel_text(text, (2, 2)), expected, err_msg=repr(text))


@pytest.mark.parametrize(
    "text, shape, match",
    [
        ("1 x\n0 1", None, "row 1, column 2 is 'x'"),
        ("1 2\n3", None, "Row 2 has 1 number but row 1 has 2 numbers"),
        ("  \n ", None, "empty"),
        ("1 0\n0 1", (3, 3), "2 x 2 but the kernel size is 3 x 3"),
        ("1 " * 16, None, "at most 15x15"),
        (None, None, "must be text, one row per line; received NoneType"),
    ],
)
def test_typed_rows_that_are_wrong_say_what_and_where(text, shape, match):
    with pytest.raises(KernelError, match=match):
        K.parse_kernel_text(text, shape)


def test_format_kernel_aligns_columns():
    assert K.format_kernel([[1 / 9, -1], [2, 0]]).splitlines() == ["1/9  -1", "  2   0"]


def test_format_number():
    assert [K.format_number(v) for v in (2.0, -0.5, 1 / 9, 0.0625, -0.0)] == ["2", "-0.5", "1/9", "0.0625", "0"]


def test_stack_filters_makes_keras_layout():
    k = K.stack_filters([np.ones((3, 4)), np.full((3, 4, 2), 2.0)], channels=2)
    assert k.shape == (3, 4, 2, 2) and k[..., 0].sum() == 24 and k[..., 1].sum() == 48
    with pytest.raises(KernelError, match="Filter 2 is 5x5"):
        K.stack_filters([np.ones((3, 3)), np.ones((5, 5))], channels=1)
    with pytest.raises(KernelError, match="empty"):
        K.stack_filters([], channels=1)

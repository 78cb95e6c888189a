"""Hand-made filters: the classic presets at any size, and parsing typed cells.

The presets are the ones the chapters slide over digits and photographs:
line detectors, Sobel, Laplacian, blurs, sharpen, emboss and identity. Each is
defined for any ``kh x kw`` so that the page's 5x5 and non-square grids get a
sensible version; at 3x3 they are the textbook kernels.
"""
from __future__ import annotations

import re
from fractions import Fraction

import numpy as np

from .errors import KernelError

__all__ = ["PRESETS", "preset_kernel", "parse_kernel", "parse_kernel_text", "parse_number", "format_number",
           "format_kernel", "stack_filters", "MAX_KERNEL_SIZE"]

MAX_KERNEL_SIZE = 15

PRESETS = (
    "identity",
    "vertical line",
    "horizontal line",
    "sobel x",
    "sobel y",
    "laplacian",
    "box blur",
    "gaussian blur",
    "sharpen",
    "emboss",
)

_CLASSIC_3X3 = {
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
}


def _binomial(n: int) -> np.ndarray:
    """Row n-1 of Pascal's triangle: the 1-D Gaussian (smoothing) weights of length n."""
    row = np.array([1.0])
    for _ in range(n - 1):
        row = np.convolve(row, [1.0, 1.0])
    return row


def _derivative(n: int) -> np.ndarray:
    """Sobel's 1-D derivative weights of length n: [-1, 0, 1] for 3, [-1, -2, 0, 2, 1] for 5."""
    if n == 1:
        return np.array([0.0])
    return np.convolve(_binomial(n - 1), [1.0, -1.0])[::-1] + 0.0  # + 0.0 drops -0.0


def _identity(kh: int, kw: int) -> np.ndarray:
    k = np.zeros((kh, kw))
    k[kh // 2, kw // 2] = 1.0
    return k


def preset_kernel(name: str, size=(3, 3)) -> np.ndarray:
    """A named filter of the given size.

    Args:
        name: one of :data:`PRESETS` (case-insensitive).
        size: an int or ``(kh, kw)``, each 1..:data:`MAX_KERNEL_SIZE`.

    Returns:
        float64 kh x kw array. At 3x3 these are the textbook kernels, e.g.
        Sobel x ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]``; edge detectors sum
        to 0, blurs to 1.

    Raises:
        KernelError: for an unknown name or a size out of range.

    Example:
        >>> preset_kernel("sobel x")
        array([[-1.,  0.,  1.],
               [-2.,  0.,  2.],
               [-1.,  0.,  1.]])
    """
    key = str(name).strip().lower()
    if key not in PRESETS:
        raise KernelError(f"Unknown preset {name!r}; choose one of: {', '.join(PRESETS)}.")
    kh, kw = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if not (1 <= kh <= MAX_KERNEL_SIZE and 1 <= kw <= MAX_KERNEL_SIZE):
        raise KernelError(
            f"Kernel size must be 1..{MAX_KERNEL_SIZE} on each side; received {kh}x{kw}."
        )
    if (kh, kw) == (3, 3) and key in _CLASSIC_3X3:
        return np.array(_CLASSIC_3X3[key], dtype=np.float64)
    if key == "identity":
        return _identity(kh, kw)
    if key == "box blur":
        return np.full((kh, kw), 1.0 / (kh * kw))
    if key == "gaussian blur":
        k = np.outer(_binomial(kh), _binomial(kw))
        return k / k.sum()
    if key == "sobel x":
        return np.outer(_binomial(kh), _derivative(kw))
    if key == "sobel y":
        return np.outer(_derivative(kh), _binomial(kw))
    if key in ("vertical line", "horizontal line"):
        # -1 everywhere, a bright centre line; sums to 0 so flat areas give 0.
        k = -np.ones((kh, kw))
        if key == "vertical line":
            k[:, kw // 2] = kw - 1.0
        else:
            k[kh // 2, :] = kh - 1.0
        return k
    if key == "laplacian":
        k = np.ones((kh, kw))
        k[kh // 2, kw // 2] = -(kh * kw - 1.0)
        return k
    if key == "sharpen":  # unsharp mask: 2 * identity - box blur
        return 2.0 * _identity(kh, kw) - np.full((kh, kw), 1.0 / (kh * kw))
    # emboss: a ramp from the top-left corner (negative) to the bottom-right, centre 1
    i = (np.arange(kh) - (kh - 1) / 2) / max((kh - 1) / 2, 1)
    j = (np.arange(kw) - (kw - 1) / 2) / max((kw - 1) / 2, 1)
    k = i[:, None] + j[None, :]
    k[kh // 2, kw // 2] = 1.0
    return k


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_CELL_SEPARATORS = re.compile(r"[\s,;]+")  # between the numbers of a typed row


def parse_number(text) -> float:
    """Parse one kernel cell: a number such as ``2``, ``-0.5``, ``1e-3`` or a fraction ``1/9``.

    Args:
        text: a string or a real number.

    Returns:
        The value as a float.

    Raises:
        KernelError: when the cell is empty or not a finite number.

    Example:
        >>> parse_number("1/9") == 1 / 9
        True
    """
    if isinstance(text, (int, float, np.integer, np.floating)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = "" if text is None else str(text).strip().replace("\u2212", "-")
        if not s:
            raise KernelError("is empty")
        parts = s.split("/")
        if len(parts) > 2 or not all(_NUMBER.match(p.strip()) for p in parts):
            raise KernelError(f"is {s!r}, which is not a number")
        try:
            value = float(Fraction(parts[0].strip()) / Fraction(parts[1].strip())) if len(parts) == 2 else float(s)
        except ZeroDivisionError:
            raise KernelError(f"is {s!r}, a division by zero") from None
    if not np.isfinite(value):
        raise KernelError(f"is {text!r}, which is not a finite number")
    return value


def parse_kernel(cells) -> np.ndarray:
    """Turn a grid of typed cells into a kernel, naming the first bad cell.

    Args:
        cells: a rectangular 2-D grid (list of lists, array, or anything with
            ``.values`` such as a DataFrame) of numbers or strings like
            ``"1/9"``.

    Returns:
        float64 kh x kw array.

    Raises:
        KernelError: naming the row and column (1-based) of a cell that is
            empty or not a number, or when the grid is not rectangular or is
            larger than :data:`MAX_KERNEL_SIZE`.

    Example:
        >>> float(parse_kernel([["1/9"] * 3] * 3).sum().round(6))
        1.0
    """
    grid = getattr(cells, "values", cells)
    rows = [list(r) for r in grid]
    if not rows or not rows[0]:
        raise KernelError("The kernel is empty; it needs at least one row and one column.")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise KernelError("The kernel's rows have different lengths; every row needs the same number of cells.")
    if len(rows) > MAX_KERNEL_SIZE or width > MAX_KERNEL_SIZE:
        raise KernelError(
            f"The kernel is {len(rows)}x{width}; at most {MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE} is allowed."
        )
    out = np.empty((len(rows), width))
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            try:
                out[r, c] = parse_number(cell)
            except KernelError as err:
                raise KernelError(
                    f"Kernel cell at row {r + 1}, column {c + 1} {err}; "
                    "type a number such as 1, -0.5, 2e-1 or 1/9."
                ) from None
    return out


def parse_kernel_text(text, shape=None) -> np.ndarray:
    r"""Turn typed text, one row of weights per line, into a kernel.

    Numbers on a line are separated by spaces, commas or semicolons; blank
    lines are skipped. A pasted list such as ``[[1, 0], [0, 1]]`` works too:
    a closing bracket ends a row. Each number is read by :func:`parse_number`,
    so fractions such as ``1/9`` work.

    Args:
        text: the rows, as a string.
        shape: optional ``(kh, kw)`` the kernel must have.

    Returns:
        float64 kh x kw array.

    Raises:
        KernelError: naming the row and column (1-based) of a bad number, a
            row whose length differs from the first's, or, with ``shape``,
            the size typed against the size wanted.

    Example:
        >>> parse_kernel_text("1/9 1/9\n1/9 1/9").shape
        (2, 2)
    """
    if not isinstance(text, str):
        raise KernelError(f"The weights must be text, one row per line; received {type(text).__name__}.")
    rows = [_CELL_SEPARATORS.split(line.strip()) for line in text.replace("]", "\n").replace("[", " ").splitlines()]
    rows = [[cell for cell in row if cell] for row in rows]
    rows = [row for row in rows if row]
    if not rows:
        raise KernelError("The kernel is empty: type one row of weights per line, such as 0 1 0.")
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise KernelError(f"Row {r} has {_count(len(row))} but row 1 has {_count(len(rows[0]))}; "
                              "every row needs the same number.")
    kernel = parse_kernel(rows)
    if shape is not None and tuple(kernel.shape) != tuple(int(v) for v in shape):
        kh, kw = (int(v) for v in shape)
        raise KernelError(f"The weights are {kernel.shape[0]} x {kernel.shape[1]} but the kernel size is {kh} x {kw}: "
                          f"type {kh} rows of {kw} numbers, or change the kernel size.")
    return kernel


def _count(n: int) -> str:
    return f"{n} number" if n == 1 else f"{n} numbers"


def format_kernel(kernel) -> str:
    """Write a kernel as text that :func:`parse_kernel_text` reads back: one row per line, columns aligned.

    Example:
        >>> print(format_kernel([[-1, 0, 1], [-2, 0, 2]]))
        -1  0  1
        -2  0  2
    """
    cells = [[format_number(v) for v in row] for row in np.atleast_2d(np.asarray(kernel, dtype=np.float64))]
    widths = [max(len(row[c]) for row in cells) for c in range(len(cells[0]))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in cells)


def format_number(value: float) -> str:
    """Write a kernel value as a person would type it: ``2``, ``-0.5``, ``1/9``.

    The inverse of :func:`parse_number` for the presets' values: simple
    fractions (denominator up to 256) are written as fractions.

    Example:
        >>> [format_number(v) for v in (2.0, -0.5, 1 / 9, 0.0625)]
        ['2', '-0.5', '1/9', '0.0625']
    """
    v = float(value) + 0.0  # + 0.0 drops -0.0
    if v == int(v):
        return str(int(v))
    short = f"{v:.6g}"
    frac = Fraction(v).limit_denominator(256)
    if abs(float(frac) - v) < 1e-12 and len(short) > 6:
        return f"{frac.numerator}/{frac.denominator}"
    return short


def stack_filters(filters, channels: int) -> np.ndarray:
    """Stack F filters into Keras' kernel layout, kh x kw x C x F.

    Args:
        filters: a sequence of kh x kw arrays (the same weights on every
            channel, as when one grid is drawn for a colour image) or
            kh x kw x C arrays (one slice per channel).
        channels: C, the number of input channels.

    Returns:
        float64 kh x kw x C x F.

    Raises:
        KernelError: when the filters differ in size or channel count.

    Example:
        >>> stack_filters([np.ones((3, 3)), np.zeros((3, 3, 3))], channels=3).shape
        (3, 3, 3, 2)
    """
    if int(channels) < 1:
        raise KernelError(f"`channels` must be at least 1; received {channels!r}.")
    out = []
    for i, k in enumerate(filters):
        k = np.asarray(k, dtype=np.float64)
        if k.ndim == 2:
            k = np.repeat(k[:, :, None], channels, axis=2)
        if k.ndim != 3 or k.shape[2] != channels:
            raise KernelError(f"Filter {i + 1} has shape {k.shape}; expected kh x kw or kh x kw x {channels}.")
        if out and k.shape != out[0].shape:
            raise KernelError(
                f"Filter {i + 1} is {k.shape[0]}x{k.shape[1]} but filter 1 is {out[0].shape[0]}x{out[0].shape[1]}; "
                "all filters of one layer share a size."
            )
        out.append(k)
    if not out:
        raise KernelError("`filters` is empty; give at least one filter.")
    return np.stack(out, axis=3)

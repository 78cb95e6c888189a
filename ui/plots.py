"""Plotly figure builders shared by the pages: drawing only, no numerics.

Every figure puts row 0 at the top and keeps pixels square, so maps look like
the images they come from. Feature maps use a diverging scale centred on 0,
so negative responses (blue) are as visible as positive ones (red).

Figures are built from plain dicts with plotly's validation off: a page
draws a dozen of them on every edit, and validation cost ~10 ms each.

The same colour scales also come as plain pictures (:func:`map_picture`),
shown with ``st.image``: no chart library for the browser to load, so a page
whose first view needs no hovering draws at once.
"""
from __future__ import annotations

import base64

import cv2
import numpy as np
import plotly.colors
import plotly.graph_objects as go

from cvcore.images import enlarge, fit_within

# What a map is sent to the browser at, at most: a chart is ~250 px tall, so
# more pixels cost serialisation time and bandwidth for nothing.
MAP_SIDE = 256
GRID_SIDE = 176  # maps in a grid of more than 4: a cell is ~230 px wide on screen
CUBE_SIDE = 96


def _scale(colors: list[str]) -> list[list]:
    return [[i / (len(colors) - 1), c] for i, c in enumerate(colors)]


DIVERGING = _scale(plotly.colors.diverging.RdBu_r)  # blue < 0 < red, white at 0
GRAY = [[0.0, "rgb(0,0,0)"], [1.0, "rgb(255,255,255)"]]
COUNTS = _scale(plotly.colors.sequential.Blues)  # white for 0, dark blue for many

_MARGIN = dict(l=4, r=4, t=32, b=4)


def _figure(data: list[dict], layout: dict) -> go.Figure:
    return go.Figure(data=data, layout=layout, _validate=False)


def _image_layout(title: str, height: int, square: bool = True) -> dict:
    yaxis = dict(visible=False, autorange="reversed")
    if square:  # square pixels; small matrices in narrow columns stretch instead of clipping
        yaxis.update(scaleanchor="x", constrain="domain")
    return dict(
        title=dict(text=title, font=dict(size=13), x=0.02),
        height=height,
        margin=_MARGIN,
        xaxis=dict(visible=False, constrain="domain"),
        yaxis=yaxis,
        plot_bgcolor="rgba(0,0,0,0)",
        shapes=[],
    )


def symmetric_range(*arrays, robust: bool = True) -> float:
    """Half-range of a colour scale centred on 0, shared by the arrays (1.0 when all are zero).

    With ``robust``, maps of more than 100 values use the 99.5th percentile of
    |value|, so that a few extreme pixels (the edges that zero padding makes
    at the border, say) saturate instead of washing out everything else.
    Hover labels still show the exact values.
    """
    tops = []
    for a in arrays:
        a = np.abs(np.asarray(a, dtype=np.float32))
        if a.size:
            tops.append(float(np.nanpercentile(a, 99.5) if robust and a.size > 100 else np.nanmax(a)))
    top = max(tops, default=0.0)
    return top if top > 0 else 1.0


def _colour(trace: dict, arr, diverging: bool, zmax: float | None = None) -> dict:
    """A heatmap trace's colours: blue-white-red centred on 0 (maps), or gray 0..255 (images)."""
    if diverging:
        top = zmax if zmax is not None else symmetric_range(arr)
        trace.update(colorscale=DIVERGING, zmid=0.0, zmin=-top, zmax=top)
    else:
        trace.update(colorscale=GRAY)
    return trace


def heatmap(arr, title: str = "", *, diverging: bool = True, zmax: float | None = None, height: int = 260,
            text: bool = False, fmt: str = ".2f", colorbar: bool = True) -> go.Figure:
    """One 2-D array as a heatmap; diverging maps are centred on 0.

    Args:
        arr: H x W values.
        title: shown above.
        diverging: blue-white-red centred on 0 (feature maps) or gray (images).
        zmax: the colour scale's half-range for diverging maps (shared scales).
        height: pixels.
        text: write each value in its cell (small matrices: kernels, patches).
        fmt: the number format for ``text``.
        colorbar: show the colour bar.
    """
    arr = np.asarray(arr, dtype=np.float32)
    if not text and max(arr.shape) > MAP_SIDE:
        arr = fit_within(arr, MAP_SIDE)
        title = f"{title} (shown at {arr.shape[0]} x {arr.shape[1]})"
    trace = _colour(dict(type="heatmap", z=arr, showscale=colorbar,
                         hovertemplate="row %{y}, col %{x}<br>%{z:.3f}<extra></extra>"), arr, diverging, zmax)
    if text:
        trace.update(texttemplate=f"%{{z:{fmt}}}", textfont=dict(size=12))
    if colorbar:
        trace["colorbar"] = dict(thickness=10, len=0.9)
    return _figure([trace], _image_layout(title, height, square=not text))


def _lookup(scale: list[list]) -> np.ndarray:
    """A plotly colour scale as a 256 x 3 uint8 table, for colouring pictures without plotly."""
    stops = np.array([p for p, _ in scale])
    rgb = np.array([plotly.colors.unlabel_rgb(c) for _, c in scale], dtype=np.float64)
    at = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(at, stops, rgb[:, k]) for k in range(3)], axis=1).round().astype(np.uint8)


_DIVERGING_TABLE = _lookup(DIVERGING)


def map_picture(arr, *, zmax: float | None = None, side: int = MAP_SIDE) -> np.ndarray:
    """A feature map (or kernel) as an RGB picture in :data:`DIVERGING` colours, centred on 0.

    The same colours as :func:`heatmap` and :func:`map_grid`, as a picture for
    ``st.image``: large maps are shrunk (area-averaged) to ``side``, small ones
    enlarged with square pixels to about ``side`` so that every value stays a
    sharp block.

    Args:
        arr: H x W values.
        zmax: the scale's half-range: ``-zmax`` is darkest blue, ``+zmax`` darkest red
            (None: :func:`symmetric_range` of ``arr``).
        side: the longer side of the picture, about.

    Returns:
        uint8 H' x W' x 3.

    Example:
        >>> map_picture(np.array([[-1.0, 0.0], [0.0, 1.0]]), side=4).shape
        (4, 4, 3)
    """
    arr = np.asarray(arr, dtype=np.float32)
    top = zmax if zmax is not None else symmetric_range(arr)
    if max(arr.shape) > side:
        arr = fit_within(arr, side)
    index = np.clip((arr / top + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    return enlarge(_DIVERGING_TABLE[index], side)


def picture_width(picture, source, side: int) -> int:
    """The width to show ``picture`` (made from the array ``source``) at with ``st.image``.

    An enlarged picture is shown at its own size, so that its blocks stay sharp; one that was not
    enlarged (a photograph's map) is stretched until its longer side is ``side``.

    Example:
        >>> digit = np.zeros((28, 28)); picture_width(map_picture(digit, side=250), digit, 250)
        224
    """
    if picture.shape[0] > np.shape(source)[0]:
        return int(picture.shape[1])
    return max(1, round(side * picture.shape[1] / max(picture.shape[:2])))


def image(img, title: str = "", height: int = 260) -> go.Figure:
    """A uint8 gray (H x W) or RGB (H x W x 3) image, sent as a PNG.

    A PNG is a fraction of the size of a pixel array in JSON; pixel
    coordinates stay those of the image, so shapes can be drawn over it.
    """
    img = np.asarray(img, dtype=np.uint8)
    bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, png = cv2.imencode(".png", bgr)
    source = "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")
    return _figure([dict(type="image", source=source, hoverinfo="x+y")], _image_layout(title, height))


def _add_shape(fig: go.Figure, shape: dict) -> None:
    fig.layout.shapes = (*fig.layout.shapes, shape)


def add_window(fig: go.Figure, top: int, left: int, kh: int, kw: int, color: str = "#f5a623") -> go.Figure:
    """Outline the kh x kw window whose top-left pixel is (top, left)."""
    _add_shape(fig, dict(type="rect", x0=left - 0.5, x1=left + kw - 0.5, y0=top - 0.5, y1=top + kh - 0.5,
                         line=dict(color=color, width=3)))
    return fig


def add_padding_frame(fig: go.Figure, pads, shape, color: str = "#2ca02c") -> go.Figure:
    """Outline the original image inside its zero padding."""
    (top, bottom), (left, right) = pads
    h, w = shape[:2]
    _add_shape(fig, dict(type="rect", x0=left - 0.5, x1=w - right - 0.5, y0=top - 0.5, y1=h - bottom - 0.5,
                         line=dict(color=color, width=2, dash="dot")))
    return fig


def add_positions(fig: go.Figure, rows, cols, kh: int, kw: int, max_points: int = 2500) -> int:
    """Mark the centre of every window the kernel lands on; returns how many were drawn (0 if too many)."""
    n = len(rows) * len(cols)
    if n == 0 or n > max_points:
        return 0
    yy, xx = np.meshgrid(np.asarray(rows) + (kh - 1) / 2, np.asarray(cols) + (kw - 1) / 2, indexing="ij")
    fig.add_trace(dict(type="scatter", x=xx.ravel(), y=yy.ravel(), mode="markers", hoverinfo="skip",
                       marker=dict(size=4, color="#f5a623", opacity=0.8), showlegend=False))
    return n


def feature_cube(fmaps, title: str = "Feature-map cube", height: int = 460) -> go.Figure:
    """Stack F feature maps (H x W x F) as planes in 3-D: the cube the chapters draw."""
    fmaps = np.asarray(fmaps, dtype=np.float32)
    top = symmetric_range(fmaps)
    if max(fmaps.shape[:2]) > CUBE_SIDE:  # a 3-D overview: coarser planes turn smoothly
        fmaps = np.stack([fit_within(fmaps[:, :, i], CUBE_SIDE) for i in range(fmaps.shape[2])], axis=2)
    h, w, f = fmaps.shape
    yy, xx = np.mgrid[0:h, 0:w]
    data = [
        dict(type="surface", x=xx, y=yy, z=np.full((h, w), float(i)), surfacecolor=fmaps[:, :, i],
             colorscale=DIVERGING, cmin=-top, cmax=top, showscale=(i == 0), name=f"filter {i + 1}",
             # flat, unlit planes: the colours must read as on the 2-D maps
             lighting=dict(ambient=1.0, diffuse=0.0, specular=0.0, roughness=1.0, fresnel=0.0),
             colorbar=dict(thickness=10, len=0.7),
             hovertemplate=f"filter {i + 1}<br>row %{{y}}, col %{{x}}<br>%{{surfacecolor:.3f}}<extra></extra>")
        for i in range(f)
    ]
    layout = dict(
        title=dict(text=title, font=dict(size=13), x=0.02), height=height, margin=dict(l=0, r=0, t=32, b=0),
        scene=dict(
            xaxis=dict(title=dict(text="width"), showticklabels=False),
            yaxis=dict(title=dict(text="height"), autorange="reversed", showticklabels=False),
            zaxis=dict(title=dict(text="filter"), tickvals=list(range(f)), ticktext=[str(i + 1) for i in range(f)]),
            aspectmode="manual", aspectratio=dict(x=1.6, y=1.6 * h / max(w, 1), z=min(0.3 * f, 1.6)),
            camera=dict(eye=dict(x=1.45, y=-1.65, z=1.2)),
        ),
    )
    return _figure(data, layout)


def map_grid(maps, titles, *, columns: int = 4, row_height: int = 250, zmaxes=None, diverging: bool = True,
             colorbars: bool = True) -> go.Figure:
    """Small multiples: many feature maps in one figure, each with its own centred scale.

    One figure instead of one per map: a page with 16 maps pays plotly's
    fixed cost once, and the browser draws one chart.

    Args:
        maps: 2-D arrays, or H x W x 3 RGB images (0..255, drawn as images), shrunk for display
            when larger than :data:`MAP_SIDE` (:data:`GRID_SIDE` when there are more than 4); None
            leaves its cell empty.
        titles: one per map.
        columns: maps per row.
        row_height: pixels per row.
        zmaxes: optional half-range per map (None: :func:`symmetric_range` of each).
        diverging: centred blue-white-red maps, or gray 0..255 images (digits, say).
        colorbars: a colour bar beside each map.
    """
    n = len(maps)
    side = MAP_SIDE if n <= 4 else GRID_SIDE
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    gap_x, gap_y = 0.06, 0.12 / rows
    cell_w = (1 - gap_x * (columns - 1)) / columns
    cell_h = (1 - gap_y * (rows - 1)) / rows
    data, layout = [], dict(height=row_height * rows, margin=dict(l=4, r=4, t=28, b=4),
                            plot_bgcolor="rgba(0,0,0,0)", annotations=[])
    for i, (arr, title) in enumerate(zip(maps, titles)):
        if arr is None:
            continue
        arr = np.asarray(arr, dtype=np.float32)
        if max(arr.shape) > side:
            arr = fit_within(arr, side)
        r, c = divmod(i, columns)
        x0 = c * (cell_w + gap_x)
        y1 = 1 - r * (cell_h + gap_y)
        suffix = "" if i == 0 else str(i + 1)
        if arr.ndim == 3:  # an RGB image (0..255) is drawn as one, not as a map
            trace = dict(type="image", z=np.clip(arr, 0, 255).astype(np.uint8), xaxis=f"x{suffix}",
                         yaxis=f"y{suffix}", hovertemplate=f"{title}<br>row %{{y}}, col %{{x}}<extra></extra>")
        else:
            trace = dict(type="heatmap", z=arr, xaxis=f"x{suffix}", yaxis=f"y{suffix}", showscale=colorbars,
                         hovertemplate=f"{title}<br>row %{{y}}, col %{{x}}<br>%{{z:.3f}}<extra></extra>",
                         colorbar=dict(thickness=8, len=cell_h * 0.85, x=x0 + cell_w * 0.92, y=y1 - cell_h / 2,
                                       yanchor="middle", tickfont=dict(size=9)))
            _colour(trace, arr, diverging, zmaxes[i] if zmaxes is not None else None)
            if not diverging:
                trace.update(zmin=0, zmax=255)
        data.append(trace)
        width = 0.85 if colorbars else 1.0
        layout[f"xaxis{suffix}"] = dict(domain=[x0, x0 + cell_w * width], visible=False, constrain="domain")
        layout[f"yaxis{suffix}"] = dict(domain=[y1 - cell_h, y1], visible=False, autorange="reversed",
                                        scaleanchor=f"x{suffix}", constrain="domain")
        layout["annotations"].append(dict(text=f"<b>{title}</b>", x=x0, y=y1, xref="paper", yref="paper",
                                          xanchor="left", yanchor="bottom", showarrow=False, font=dict(size=12)))
    return _figure(data, layout)


# ---------------------------------------------------------------------------- training

RUN_COLOURS = ["#d6604d", "#4393c3", "#1b7837", "#762a83", "#e08214", "#35978f", "#8c510a", "#c51b7d"]


def learning_curves(runs: dict, metric: str, *, height: int = 320, phases=None) -> go.Figure:
    """Training (solid) and validation (dashed) curves of one metric for one or more runs.

    Args:
        runs: run label -> history (lists per epoch under metric and "val_" + metric).
        metric: ``"loss"`` or ``"accuracy"``.
        phases: ``[(title, epochs), ...]`` of a run trained in phases (fine-tuning after the
            head): a dotted line marks where each later phase begins, with its title.
    """
    data = []
    for i, (label, history) in enumerate(runs.items()):
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        for key, dash, name in ((metric, "solid", "training"), (f"val_{metric}", "dash", "validation")):
            values = list(history.get(key) or [])
            if values:
                data.append(dict(type="scatter", mode="lines+markers", x=list(range(1, len(values) + 1)), y=values,
                                 name=f"{label} · {name}", line=dict(color=colour, dash=dash, width=2),
                                 marker=dict(size=6), hovertemplate=f"{label} · {name}<br>epoch %{{x}}: %{{y:.4f}}<extra></extra>"))
    layout = dict(height=height, margin=dict(l=50, r=10, t=36, b=40), title=dict(text=metric, x=0.02, font=dict(size=14)),
                  xaxis=dict(title=dict(text="epoch"), dtick=1, rangemode="tozero"),
                  yaxis=dict(title=dict(text=metric)), legend=dict(orientation="h", y=-0.25, font=dict(size=11)),
                  hovermode="closest")
    fig = _figure(data, layout)
    start = 0
    for i, (title, epochs) in enumerate(phases or []):
        if i:
            fig.add_vline(x=start + 0.5, line=dict(color="#888", dash="dot", width=1.5))
            fig.add_annotation(x=start + 0.5, y=1, yref="paper", text=str(title).split(" (")[0], showarrow=False,
                               xanchor="left", yanchor="top", font=dict(size=11, color="#555"))
        start += int(epochs)
    return fig


def confusion(matrix, class_names, *, height: int = 460) -> go.Figure:
    """A confusion matrix: rows the true classes, columns the predicted ones, counts in the cells."""
    matrix = np.asarray(matrix)
    names = [str(n) for n in class_names]
    trace = dict(type="heatmap", z=matrix, x=names, y=names, colorscale=COUNTS, texttemplate="%{z}",
                 hovertemplate="true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>", showscale=False)
    layout = dict(height=height, margin=dict(l=10, r=10, t=30, b=10),
                  xaxis=dict(title=dict(text="predicted"), side="top", type="category"),
                  yaxis=dict(title=dict(text="true"), autorange="reversed", type="category"))
    return _figure([trace], layout)


def probability_bars(proba, class_names, *, height: int = 260, title: str = "") -> go.Figure:
    """One image's class probabilities as horizontal bars, the winner highlighted."""
    proba = np.asarray(proba, dtype=np.float32)
    best = int(proba.argmax())
    colours = ["#d6604d" if i == best else "#92c5de" for i in range(len(proba))]
    trace = dict(type="bar", orientation="h", x=proba, y=[str(n) for n in class_names], marker=dict(color=colours),
                 hovertemplate="%{y}: %{x:.3f}<extra></extra>")
    layout = dict(height=height, margin=dict(l=10, r=10, t=30 if title else 10, b=30),
                  title=dict(text=title, x=0.02, font=dict(size=13)),
                  xaxis=dict(range=[0, 1], title=dict(text="probability")), yaxis=dict(autorange="reversed", type="category"))
    return _figure([trace], layout)


def class_counts(counts: dict, *, height: int = 320) -> go.Figure:
    """Images per class as stacked bars: training and validation.

    Args:
        counts: class name -> ``(train, validation)``.
    """
    names = [str(n) for n in counts]
    data = [dict(type="bar", x=names, y=[int(v[i]) for v in counts.values()], name=label, marker=dict(color=colour),
                 hovertemplate=f"%{{x}}: %{{y}} {label} images<extra></extra>")
            for i, (label, colour) in enumerate((("training", "#4393c3"), ("validation", "#d6604d")))]
    layout = dict(barmode="stack", height=height, margin=dict(l=50, r=10, t=36, b=40),
                  title=dict(text="Images per class", x=0.02, font=dict(size=14)),
                  xaxis=dict(type="category", tickangle=-30), yaxis=dict(title=dict(text="images")),
                  legend=dict(orientation="h", y=1.12, x=1, xanchor="right"))
    return _figure(data, layout)


def image_sizes(sizes, labels, class_names, *, height: int = 320) -> go.Figure:
    """Width against height of every image, one colour per class (a cloud where sizes vary)."""
    sizes = np.asarray(sizes).reshape(-1, 2)
    labels = np.asarray(labels)
    unique = np.unique(sizes, axis=0)
    title = (f"Image sizes: every image is {unique[0][1]} x {unique[0][0]} px" if len(unique) == 1
             else f"Image sizes (width x height, px): {len(unique):,} different")
    data = []
    for i, name in enumerate(class_names):
        member = labels == i
        if member.any():
            data.append(dict(type="scattergl", mode="markers", x=sizes[member, 1], y=sizes[member, 0], name=str(name),
                             marker=dict(size=6, opacity=0.6, color=RUN_COLOURS[i % len(RUN_COLOURS)]),
                             hovertemplate=f"{name}<br>%{{x}} x %{{y}} px<extra></extra>"))
    layout = dict(height=height, margin=dict(l=50, r=10, t=36, b=40),
                  title=dict(text=title, x=0.02, font=dict(size=14)),
                  xaxis=dict(title=dict(text="width"), rangemode="tozero"),
                  yaxis=dict(title=dict(text="height"), rangemode="tozero"),
                  showlegend=len(data) <= 12, legend=dict(font=dict(size=10)))
    return _figure(data, layout)


# ---------------------------------------------------------------------------- visualization

HEAT = _scale(plotly.colors.sequential.Turbo)


def overlay(img, heat, *, opacity: float = 0.5, title: str = "", height: int = 360) -> go.Figure:
    """A heatmap in [0, 1] (a class activation or saliency map) over an image, with the given opacity.

    Args:
        img: uint8 H x W or H x W x 3.
        heat: float H x W in [0, 1], the image's size.
        opacity: of the heatmap, 0 (the image alone) to 1 (the map alone).
    """
    img = np.asarray(img, np.uint8)
    heat = np.asarray(heat, np.float32)
    if max(img.shape[:2]) > MAP_SIDE:
        img = fit_within(img, MAP_SIDE)
    if heat.shape[:2] != img.shape[:2]:
        heat = cv2.resize(heat, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_AREA)
    fig = image(img, title, height)
    if opacity > 0:
        fig.add_trace(dict(type="heatmap", z=heat, zmin=0, zmax=1, colorscale=HEAT, opacity=float(opacity),
                           showscale=True, colorbar=dict(thickness=10, len=0.9),
                           hovertemplate="row %{y}, col %{x}<br>%{z:.2f}<extra></extra>"))
    return fig


def layer_bars(names, values, *, title: str, ytitle: str, height: int = 280, percent: bool = True) -> go.Figure:
    """One bar per layer, in the model's order (blank maps per layer, say)."""
    trace = dict(type="bar", x=list(names), y=[float(v) for v in values], marker=dict(color="#4393c3"),
                 hovertemplate="%{x}: %{y:" + (".0%" if percent else ".3f") + "}<extra></extra>")
    layout = dict(height=height, margin=dict(l=50, r=10, t=36, b=60), title=dict(text=title, x=0.02, font=dict(size=14)),
                  xaxis=dict(type="category", tickangle=-35), yaxis=dict(title=dict(text=ytitle),
                                                                         tickformat=".0%" if percent else None))
    return _figure([trace], layout)

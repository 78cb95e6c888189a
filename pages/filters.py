"""Filters & convolution: hand-made kernels slid over digits and photographs.

Reads top-down: the input image, the filters, the convolution's settings,
then what comes out (shapes, feature maps, the cube, one pixel step by step,
the per-channel view and the Keras code). All numerics are cvcore's.
"""
import numpy as np
import streamlit as st

from cvcore import convolution as conv
from cvcore import images, kernels
from cvcore.data import DATASET_TITLES, DATASETS, PHOTOS
from cvcore.errors import CvcoreError
from ui import image_source, plots
from ui.common import dataset, drawn_digit, photo, show_error, wide_layout

SIZES = {"3 x 3": (3, 3), "5 x 5": (5, 5), "3 x 4": (3, 4), "custom": None}
START_PRESETS = ["vertical line", "horizontal line", "sobel x", "sobel y",
                 "laplacian", "gaussian blur", "sharpen", "emboss"]
CHANNELS = ("R", "G", "B")
INPUT_SIDE = 260  # px, the input picture's longer side on screen
KERNEL_SIDE = 96  # px, a kernel's picture beside its weights
MAX_WEIGHTS_CHARS = 4000  # 15 x 15 weights typed as fractions fit with room to spare

wide_layout()
st.title("Filters & convolution")
st.caption(
    "A convolution slides a small grid of weights (a kernel, or filter) over an image. At each "
    "position it multiplies the weights with the pixels beneath, sums the products and adds a "
    "bias: one number of the output, the *feature map*. Draw your own filters below."
)

# ============================================================================ 1. input
st.subheader("1 · Input image", divider="gray")
source = st.segmented_control(
    "Source", ["Data set", "Photo", "Upload", "Draw"], default="Data set", key="flt_source",
    help="A 28x28 digit or garment, a bundled colour photograph, your own PNG/JPEG, or a digit you draw.",
) or "Data set"


def dataset_image():
    c1, c2, c3 = st.columns(3)
    name = c1.selectbox("Data set", DATASETS, format_func=DATASET_TITLES.get, key="flt_dataset",
                        help="MNIST downloads once through Keras' cache; offline, the bundled digits are used.")
    (train, _, class_names), used, notice = dataset(name)
    if notice:
        st.warning(notice, icon=":material/cloud_off:")
    x, y = train
    label = c2.selectbox("Class", range(len(class_names)), format_func=lambda i: class_names[i] if class_names[i] == str(i) else f"{i}: {class_names[i]}",
                         key="flt_class")
    members = np.flatnonzero(y == label)
    i = c3.number_input(f"Index within the class (0–{len(members) - 1})", 0, len(members) - 1, 0,
                        key=f"flt_index_{used}_{label}", help="Which training image of this class.")
    return x[members[i]], f"{DATASET_TITLES[used]}, {class_names[label]} #{i}"


def photo_image():
    name = st.selectbox("Photograph", list(PHOTOS), key="flt_photo", help="scikit-image's bundled photographs.")
    return photo(name), name


def uploaded_image():
    return image_source.uploaded_image("flt_upload")


def drawn_image():
    st.caption("Draw a digit with the mouse, white on black, as in MNIST. It is shrunk to 28x28.")
    digit = drawn_digit("flt_canvas")
    if digit is None:
        st.info("Draw a digit on the canvas to see its feature maps.", icon=":material/draw:")
        st.stop()
    return digit, "your drawing"


pick = {"Data set": dataset_image, "Photo": photo_image, "Upload": uploaded_image, "Draw": drawn_image}
raw, description = pick[source]()

is_colour_source = raw.ndim == 3
c1, c2, c3 = st.columns(3)
colour = is_colour_source and c1.radio(
    "Channels", ["Colour (RGB, 3 channels)", "Grayscale (1 channel)"], key="flt_colour", horizontal=True,
    help="With colour, each filter spans all three channels: a kh x kw x 3 block of weights whose "
         "three products are summed into one feature map.",
).startswith("Colour")
if is_colour_source:
    side = c2.slider("Working size (longest side, px)", 32, 512, 160, step=16, key="flt_side",
                     help="Large photos are shrunk so that every edit answers at once.")
    raw = images.fit_within(raw, side)
rescale = c3.toggle("Rescale pixels to [0, 1]", value=True, key="flt_rescale",
                    help="Divide by 255, as Keras' Rescaling(1/255) does before training. Off: raw 0–255 values.")
x = images.prepare_input(raw, colour=colour, rescale=rescale)
h, w, c = x.shape
# A picture, not a chart: the page's first view loads no chart library, so it shows at once.
shown = raw if colour else images.to_grayscale(raw)
input_picture = images.enlarge(shown, INPUT_SIDE)
st.image(input_picture, caption=f"{description}: {h} x {w} x {c}", output_format="PNG",
         width=plots.picture_width(input_picture, shown, INPUT_SIDE))

# ============================================================================ 2. filters
st.subheader("2 · Filters", divider="gray")
c1, c2, c3 = st.columns(3)
n_filters = int(c1.number_input("Number of filters", 1, 8, 2, key="flt_n",
                                help="Each filter gives one feature map; together they form the output's depth."))
size_label = c2.selectbox("Kernel size", list(SIZES), key="flt_size", help="Rows x columns of weights.")
if SIZES[size_label] is None:
    cc1, cc2 = c2.columns(2)
    kh = int(cc1.number_input("Rows", 1, kernels.MAX_KERNEL_SIZE, 3, key="flt_kh"))
    kw = int(cc2.number_input("Columns", 1, kernels.MAX_KERNEL_SIZE, 3, key="flt_kw"))
else:
    kh, kw = SIZES[size_label]
per_channel = colour and c3.toggle(
    "Weights per channel", key="flt_per_channel",
    help="Off: the same 2-D weights on R, G and B. On: edit each channel's slice of the kh x kw x 3 filter.")
grids = CHANNELS if per_channel else ("all",)
st.caption("One row of weights per line; numbers or fractions such as `1/9`, separated by spaces. Press "
           "Ctrl+Enter (or click away) to apply. Choose a preset to start from. Beside the weights, their picture: "
           "blue negative, red positive, white zero.")


def weights_key(f: int, ch: str) -> str:
    """Each filter, channel and kernel size has its own text: changing the size starts from the preset."""
    return f"flt_weights_{f}_{ch}_{kh}x{kw}"


def preset_text(name: str) -> str:
    return kernels.format_kernel(kernels.preset_kernel(name, (kh, kw)))


def load_preset(f: int) -> None:
    """Replace filter f's weights (every channel's) with its preset's."""
    text = preset_text(st.session_state[f"flt_preset_{f}"])
    for ch in grids:
        st.session_state[weights_key(f, ch)] = text


filters, biases, problems = [], [], []
tabs = st.tabs([f"Filter {f + 1}" for f in range(n_filters)])
for f, tab in enumerate(tabs):
    with tab:
        t1, t2 = st.columns([2, 1])
        preset = t1.selectbox("Preset", kernels.PRESETS, index=kernels.PRESETS.index(START_PRESETS[f]),
                              key=f"flt_preset_{f}", on_change=load_preset, args=(f,),
                              help="Loads the preset's weights, replacing your edits.")
        biases.append(t2.number_input("Bias", value=0.0, step=0.1, format="%.3f", key=f"flt_bias_{f}",
                                      help="Added to every output of this filter."))
        slices = []
        for ch, col in zip(grids, st.columns(len(grids))):
            key = weights_key(f, ch)
            if key not in st.session_state:
                st.session_state[key] = preset_text(preset)
            # The text and a picture of the weights it makes (blue < 0 < red), side by side.
            box = col.container(horizontal=True, vertical_alignment="center")
            text = box.text_area(
                "Weights" if ch == "all" else f"{ch} channel", key=key, height=24 * kh + 40,
                width="stretch" if per_channel else min(80 + 48 * kw, 720), max_chars=MAX_WEIGHTS_CHARS,
                help=f"{kh} rows of {kw} weights, one row per line.")
            try:
                kernel = kernels.parse_kernel_text(text, (kh, kw))
                st.session_state[key + "_last_good"] = kernel
                box.image(plots.map_picture(kernel, side=KERNEL_SIDE), output_format="PNG",
                          alt=f"Filter {f + 1}'s weights as a picture")
            except CvcoreError as err:
                # Every widget below still renders (a widget left out of a run loses its value), with the
                # last weights that parsed, so nothing is lost while the text is being fixed.
                problems.append(f"Filter {f + 1}{'' if ch == 'all' else f', {ch} channel'}")
                col.error(f"{problems[-1]}: {err}", icon=":material/error:")
                kernel = st.session_state.get(key + "_last_good")
                if kernel is None:
                    kernel = kernels.preset_kernel(preset, (kh, kw))
            slices.append(kernel)
        filters.append(np.stack(slices, axis=2) if per_channel else slices[0])

K = kernels.stack_filters(filters, channels=c)
bias = np.asarray(biases, dtype=np.float32)

# ============================================================================ 3. settings
st.subheader("3 · Convolution, ReLU and pooling", divider="gray")
c1, c2, c3, c4 = st.columns(4)
padding = c1.radio("Padding", ["valid", "same"], key="flt_padding", horizontal=True,
                   help="valid: no zeros, the map shrinks. same: zeros around the border so that, with "
                        "stride 1, the map keeps the input's size (Keras puts an odd extra zero after).")
sy = int(c2.number_input("Stride (rows)", 1, 8, 1, key="flt_sy", help="How far the kernel moves down each step."))
sx = int(c2.number_input("Stride (columns)", 1, 8, 1, key="flt_sx", help="How far the kernel moves right each step."))
use_relu = c3.toggle("ReLU", value=False, key="flt_relu", help="max(x, 0): negative responses become 0.")
pool_mode = c4.selectbox("Pooling", ["none", "max", "avg"], key="flt_pool",
                         help="Summarise each window of the (ReLU'd) map by its max or average.")
if pool_mode != "none":
    p1, p2, p3 = st.columns(3)
    pool = int(p1.number_input("Pool size", 1, 8, 2, key="flt_pool_size"))
    pool_stride = int(p2.number_input("Pool stride (0: same as pool size)", 0, 8, 0, key="flt_pool_stride",
                                      help="Keras' default, strides=None, steps by the pool size."))
    pool_padding = p3.radio("Pool padding", ["valid", "same"], key="flt_pool_padding", horizontal=True)
    pool_cfg = {"mode": pool_mode, "pool_size": pool, "strides": pool_stride or None, "padding": pool_padding}
else:
    pool_cfg = None

try:
    fmap = conv.conv2d(x, K, bias, (sy, sx), padding)
    shape_text = conv.explain_output_shape((h, w), (kh, kw), (sy, sx), padding)
    activated = conv.relu(fmap) if use_relu else fmap
    pooled = (conv.pool2d(activated, pool_cfg["pool_size"], pool_cfg["strides"], pool_cfg["padding"], pool_mode)
              if pool_cfg else None)
except CvcoreError as err:
    show_error(err, "Change the kernel size, stride or padding.")
    st.stop()

# ============================================================================ 4. output
st.subheader("4 · What comes out", divider="gray")
if problems:
    st.warning(f"{' and '.join(problems)}: the weights typed have a mistake (shown above). What comes out below "
               "uses the last weights that worked; fix the text to update it.", icon=":material/edit:")
stages = [("Input", x.shape), ("Conv2D", fmap.shape)]
if use_relu:
    stages.append(("ReLU", activated.shape))
if pooled is not None:
    stages.append(({"max": "MaxPooling2D", "avg": "AveragePooling2D"}[pool_mode], pooled.shape))
params = conv.conv2d_param_count((kh, kw), c, n_filters)
with st.container(horizontal=True, gap="medium"):  # as wide as the numbers, wrapping when needed
    for name, shp in stages:
        st.metric(name, " x ".join(str(v) for v in shp), help="height x width x channels", width="content")
    st.metric("Parameters", f"{params:,}", help="Conv2D's weights and biases: (kh x kw x C + 1) x F",
              width="content")
f1, f2 = st.columns(2)
f1.latex(shape_text["rows"])
f2.latex(shape_text["cols"])

final = pooled if pooled is not None else activated
final_name = stages[-1][0]
relu_name = "relu" if use_relu else None


def feature_maps_view():
    left, right = st.columns([3, 1])
    left.caption("Blue is negative, red positive, white zero: the scale is centred on 0 so that negative "
                 "responses show (ReLU sets them to 0). Colours saturate at the 99.5th percentile of |value| "
                 "(the ± under each map) so that a few extreme pixels do not wash out the rest.")
    hover = right.toggle("Hover values", key="flt_maps_hover",
                         help="Draw the maps as an interactive chart: hover for a pixel's row, column and exact "
                              "value, drag to zoom. The chart library takes a moment to load the first time.")
    maps = [fmap[:, :, f] for f in range(n_filters)]
    titles = [f"Filter {f + 1}: Conv2D" for f in range(n_filters)]
    if final is not fmap:  # each filter's Conv2D map above its map after ReLU / pooling
        per_row = min(n_filters, 4)
        maps, titles = [], []
        for start in range(0, n_filters, per_row):
            block = range(start, min(start + per_row, n_filters))
            gap = [None] * (per_row - len(block))  # empty cells keep a short last row aligned
            maps += [fmap[:, :, f] for f in block] + gap + [final[:, :, f] for f in block] + gap
            titles += ([f"Filter {f + 1}: Conv2D" for f in block] + gap
                       + [f"Filter {f + 1}: {final_name}" for f in block] + gap)
    columns = min(n_filters, 4)
    side = plots.MAP_SIDE if len(maps) <= 4 else plots.GRID_SIDE
    if hover:
        st.plotly_chart(plots.map_grid(maps, titles, columns=columns), key="flt_maps")
    else:  # pictures in the chart's colours: nothing for the browser to load first
        for start in range(0, len(maps), columns):
            for cell, arr, title in zip(st.columns(columns), maps[start:start + columns], titles[start:start + columns]):
                if arr is not None:
                    top = plots.symmetric_range(arr)
                    picture = plots.map_picture(arr, zmax=top, side=side)
                    cell.image(picture, caption=f"{title}  (±{top:.3g})", output_format="PNG",
                               width=plots.picture_width(picture, arr, side))
    if max(fmap.shape[:2]) > side:
        st.caption(f"Maps larger than {side} px are shown shrunk (area-averaged) so that edits stay quick; "
                   "hover values are those of the shown pixels. The step-through shows exact values.")


def cube_view():
    st.caption(f"The {final_name} output, {' x '.join(map(str, final.shape))}: one plane per filter, "
               "stacked along the depth axis. Drag to turn it.")
    st.plotly_chart(plots.feature_cube(final), key="flt_cube")


def step_view():
    oh, ow, _ = fmap.shape
    s1, s2, s3 = st.columns(3)
    pf = int(s1.number_input("Filter", 1, n_filters, 1, key="flt_step_filter")) - 1
    row = s2.slider("Output row", 0, oh - 1, oh // 2, key=f"flt_step_row_{oh}")
    col_ = s3.slider("Output column", 0, ow - 1, ow // 2, key=f"flt_step_col_{ow}")
    e = conv.explain_pixel(x, K, bias, (sy, sx), padding, row=row, col=col_, filter_index=pf)
    # The padded picture is drawn from the uint8 pixels; the numbers beside it are the input's values.
    padded, pads = conv.pad_input(raw if colour else images.to_grayscale(raw), (kh, kw), (sy, sx), padding)
    rows, cols = conv.kernel_positions((h, w), (kh, kw), (sy, sx), padding)
    (pt, pb), (pl, pr) = pads
    fig = plots.image(padded.astype(np.uint8), f"Input as the kernel sees it: {padded.shape[0]} x "
                      f"{padded.shape[1]} (zeros: {pt} top, {pb} bottom, {pl} left, {pr} right)", height=420)
    drawn = plots.add_positions(fig, rows, cols, kh, kw)
    plots.add_padding_frame(fig, pads, padded.shape)
    plots.add_window(fig, e.top, e.left, kh, kw)
    left, right = st.columns(2)
    left.plotly_chart(fig, key="flt_padded")
    left.caption(f"Orange dots: the {len(rows)} x {len(cols)} = {len(rows) * len(cols)} positions where the "
                 "kernel's centre lands" + ("" if drawn else " (too many to draw; raise the stride or "
                                                              "shrink the image)")
                 + ". Orange box: the window for the chosen output pixel. Dotted green: the original image.")
    with right:
        for ch in range(c):
            label = f" ({CHANNELS[ch]})" if c == 3 else ""
            m1, m2, m3 = st.columns(3)
            m1.plotly_chart(plots.heatmap(e.patch[:, :, ch], f"pixels{label}", diverging=False, text=True,
                                          height=170, colorbar=False), key=f"flt_patch_{ch}")
            m2.plotly_chart(plots.heatmap(e.weights[:, :, ch], f"x weights{label}", text=True, height=170,
                                          colorbar=False), key=f"flt_weights_{ch}")
            m3.plotly_chart(plots.heatmap(e.products[:, :, ch], f"= products{label}", text=True, height=170,
                                          colorbar=False), key=f"flt_products_{ch}")
        st.latex(rf"\sum \text{{products}} = {e.total:.4f}")
        st.latex(rf"{e.total:.4f} + \text{{bias}}\ ({e.bias:.3f}) = {e.value:.4f}")
        if use_relu:
            st.latex(rf"\text{{ReLU}}: \max({e.value:.4f}, 0) = {max(e.value, 0.0):.4f}")
        st.caption(f"Output pixel ({row}, {col_}) of filter {pf + 1}; its window starts at row {e.top}, "
                   f"column {e.left} of the padded input.")


def channel_view():
    cf = int(st.number_input("Filter", 1, n_filters, 1, key="flt_channel_filter")) - 1
    parts = conv.channel_contributions(x, K[:, :, :, cf], (sy, sx), padding)
    st.caption("A colour filter is three 2-D slices, one per channel. Each slice is slid over its own "
               "channel; the three responses are summed and the bias added: one feature map.")
    top = plots.symmetric_range(parts, fmap[:, :, cf])
    cols = st.columns(4)
    for ch in range(3):
        cols[ch].plotly_chart(plots.heatmap(parts[:, :, ch], f"{CHANNELS[ch]} slice on {CHANNELS[ch]}",
                                            zmax=top, height=240, colorbar=False), key=f"flt_part_{ch}")
    cols[3].plotly_chart(plots.heatmap(fmap[:, :, cf], f"sum + bias {bias[cf]:.3f}", zmax=top, height=240),
                         key="flt_part_sum")


def keras_view():
    st.latex(rf"(k_h \cdot k_w \cdot C + 1) \cdot F = ({kh} \cdot {kw} \cdot {c} + 1) \cdot {n_filters} = {params}")
    st.code(conv.keras_conv2d_code(n_filters, (kh, kw), (sy, sx), padding, activation=relu_name, pool=pool_cfg),
            language="python")
    with st.expander("A runnable script with these exact weights"):
        st.code(conv.keras_conv2d_script(K, bias, x.shape, (sy, sx), padding, activation=relu_name, pool=pool_cfg),
                language="python")


views = {"Feature maps": feature_maps_view, "Feature-map cube": cube_view, "Step through one pixel": step_view}
if colour:
    views["Per-channel view"] = channel_view
views["Keras code"] = keras_view
# Lazy tabs: only the open view runs, so an edit costs one view's figures, not all of them.
for name, tab in zip(views, st.tabs(list(views), key="flt_view", on_change="rerun")):
    if tab.open:
        with tab:
            views[name]()

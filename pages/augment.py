"""Augmentation: one image, a recipe (Keras preprocessing layers or imgaug), N seeded variations.

Reads top-down: the image, the engine and every parameter of its recipe
(or a recipe loaded from JSON), how many variations and the seed; then the
original beside its augmented versions, and the recipe as code and JSON.
All numerics are cvcore's (cvcore.augment); a recipe is validated there and
a bad value is shown as a message naming it.
"""
import json
import random

import numpy as np
import streamlit as st

from cvcore import augment as aug
from cvcore import images
from cvcore.errors import CvcoreError
from cvcore.kernels import parse_number
from ui.common import show_error, wide_layout
from ui.image_source import pick_image

ENGINE_TITLES = {"keras": "Keras layers", "imgaug": "imgaug"}
STEP_TITLES = {
    "fliplr": "Fliplr: mirror left-right",
    "crop": "Crop, then resize back",
    "gaussian_blur": "Sometimes(GaussianBlur)",
    "linear_contrast": "LinearContrast",
    "gaussian_noise": "AdditiveGaussianNoise",
    "multiply": "Multiply: brightness",
    "affine": "Affine: scale, shift, rotate, shear",
}
PARAM_TITLES = {
    "p": "probability", "percent": "largest crop (fraction per side)", "sigma": "largest sigma (px)",
    "alpha": "contrast factor", "scale": "largest noise sigma (fraction of 255)", "per_channel": "per channel (probability)",
    "mul": "factor", "scale_x": "scale x", "scale_y": "scale y", "translate_x": "shift x (fraction of width)",
    "translate_y": "shift y (fraction of height)", "rotate": "rotate (degrees)", "shear": "shear (degrees)",
}
STEPS = {"p": 0.05, "percent": 0.01, "sigma": 0.1, "alpha": 0.05, "scale": 0.01, "per_channel": 0.05, "mul": 0.05,
         "scale_x": 0.05, "scale_y": 0.05, "translate_x": 0.01, "translate_y": 0.01, "rotate": 1.0, "shear": 1.0}
MAX_SEED = 2**32 - 1
ERROR_KEY = "aug_recipe_error"
KERAS_RECIPE_KEY = "aug_keras_recipe"  # the last valid Keras recipe, read by the Transfer page

wide_layout()
st.title("Augmentation")
st.caption(
    "With few images, a network memorises them. Augmentation shows it a slightly different version of each "
    "image at every epoch (turned, shifted, zoomed, mirrored, blurred, brighter or darker), so it learns what "
    "stays the same. Pick an image and a recipe, and see what the network would see."
)


# ============================================================================ recipe <-> widgets

def rescale_text(value) -> str:
    if value is None:
        return ""
    k = round(1 / value)
    return f"1/{k}" if k > 0 and 1 / k == value else repr(value)


def widget_state(recipe: dict) -> dict:
    """The widgets' values (keyed by widget key) that show a recipe."""
    r = aug.validate_recipe(recipe)
    if r["engine"] == "keras":
        zoom = r["zoom_range"]
        low, high = (1 - zoom, 1 + zoom) if isinstance(zoom, float) else zoom
        state = {f"aug_k_{k}": r[k] for k in ("rotation_range", "width_shift_range", "height_shift_range",
                                              "shear_range", "horizontal_flip", "vertical_flip", "fill_mode", "cval")}
        return {**state, "aug_k_zoom": (round(low, 4), round(high, 4)), "aug_k_rescale": rescale_text(r["rescale"])}
    state = {"aug_i_random_order": r["random_order"]}
    for step, params in aug.IMGAUG_STEPS.items():
        state[f"aug_i_{step}_enabled"] = r[step]["enabled"]
        for param in params:
            value = r[step][param]
            state[f"aug_i_{step}_{param}"] = tuple(value) if isinstance(value, list) else value
    return state


def keras_recipe() -> dict:
    s = st.session_state
    low, high = (round(v, 4) for v in s["aug_k_zoom"])
    zoom = round(high - 1, 4) if round(low + high, 4) == 2 else [low, high]  # [0.8, 1.2] is zoom_range=0.2
    text = s["aug_k_rescale"].strip()
    try:
        rescale = None if text.lower() in ("", "none") else parse_number(text)
    except CvcoreError as err:
        raise aug.AugmentError(f"`rescale` {err}: type a number such as 1/255, or leave it empty for none.") from None
    recipe = {k: s[f"aug_k_{k}"] for k in ("rotation_range", "width_shift_range", "height_shift_range", "shear_range",
                                           "horizontal_flip", "vertical_flip", "fill_mode", "cval")}
    return {"engine": "keras", **recipe, "zoom_range": zoom, "rescale": rescale}


def imgaug_recipe() -> dict:
    s = st.session_state
    recipe = {"engine": "imgaug", "random_order": s["aug_i_random_order"]}
    for step, params in aug.IMGAUG_STEPS.items():
        recipe[step] = {"enabled": s[f"aug_i_{step}_enabled"]}
        for param in params:
            value = s[f"aug_i_{step}_{param}"]
            recipe[step][param] = list(value) if isinstance(value, tuple) else value
    return recipe


def set_widgets(recipe: dict) -> None:
    for key, value in widget_state(recipe).items():
        st.session_state[key] = value


def reset(engine: str) -> None:
    set_widgets(aug.DEFAULT_RECIPES[engine])


def load_recipe() -> None:
    """The uploaded JSON recipe into the widgets; a bad file leaves them and says why."""
    up = st.session_state.get("aug_recipe_upload")
    st.session_state.pop(ERROR_KEY, None)
    if up is None:
        return
    try:
        recipe = json.loads(up.getvalue().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        st.session_state[ERROR_KEY] = f"{up.name} is not a JSON recipe ({err})."
        return
    try:
        set_widgets(recipe)
        st.session_state["aug_engine"] = recipe["engine"]
    except CvcoreError as err:
        st.session_state[ERROR_KEY] = f"{up.name}: {err}"


def new_seed() -> None:
    st.session_state["aug_random_seed"] = random.randrange(MAX_SEED + 1)


# Every parameter widget reads its value from session_state, which starts at the seed recipes. The
# re-assignment keeps one engine's edits while the other engine's widgets are shown.
for engine_name in aug.ENGINES:
    for key, value in widget_state(aug.DEFAULT_RECIPES[engine_name]).items():
        st.session_state[key] = st.session_state.get(key, value)
st.session_state.setdefault("aug_random_seed", 0)
st.session_state.setdefault("aug_engine", "keras")


@st.cache_data(show_spinner="Augmenting…", max_entries=32)
def augmented(img: np.ndarray, recipe_json: str, n: int, seed: int) -> np.ndarray:
    return aug.augment(np.repeat(img[None], n, axis=0), json.loads(recipe_json), seed)


@st.cache_data(show_spinner=False, max_entries=32)
def code_for(recipe_json: str, seed):
    return aug.recipe_code(json.loads(recipe_json), seed)


# ============================================================================ 1. image
st.subheader("1 · Image", divider="gray")
raw, caption = pick_image("aug")
side = st.slider("Working size (longest side, px)", 48, 256, 150, step=2, key="aug_side",
                 help="The chapters trained on 150 x 150 images (target_size=(150, 150)). Larger images are "
                      "shrunk to this size; smaller ones are kept as they are.")
raw = np.asarray(raw)
img = np.ascontiguousarray(images.fit_within(raw if raw.ndim == 3 else np.dstack([raw] * 3), side)[:, :, :3])

# ============================================================================ 2. recipe
st.subheader("2 · Recipe", divider="gray")
engine = st.segmented_control(
    "Engine", aug.ENGINES, format_func=ENGINE_TITLES.get, key="aug_engine",
    help="Keras preprocessing layers run inside training (in a tf.data pipeline or as a model's first layers, on "
         "the GPU when there is one). imgaug runs on the CPU, image by image, with more kinds of changes.",
) or "keras"

if engine == "keras":
    st.caption(
        "The chapters augmented with Keras 2's `ImageDataGenerator(...)` and trained with `fit_generator`; Keras 3 "
        "removed both. The same parameters now drive preprocessing layers (`RandomRotation`, `RandomTranslation`, "
        "`RandomShear`, `RandomZoom`, `RandomFlip`, `Rescaling`), which the exported code below builds."
    )
    c1, c2, c3, c4 = st.columns(4)
    c1.slider("rotation_range (degrees)", 0.0, aug.MAX_ROTATION, step=1.0, key="aug_k_rotation_range",
              help="Each image turns by an angle drawn between -r and +r. Layer: RandomRotation(r / 360), "
                   "a fraction of a full turn.")
    c2.slider("width_shift_range", 0.0, 1.0, step=0.01, key="aug_k_width_shift_range",
              help="Sideways shift, drawn between -w and +w times the width. Layer: RandomTranslation(width_factor=w).")
    c3.slider("height_shift_range", 0.0, 1.0, step=0.01, key="aug_k_height_shift_range",
              help="Up-down shift, drawn between -h and +h times the height. "
                   "Layer: RandomTranslation(height_factor=h).")
    c4.slider("shear_range (degrees)", 0.0, aug.MAX_SHEAR, step=0.1, key="aug_k_shear_range",
              help="ImageDataGenerator takes the shear as an angle in degrees: the chapters' shear_range=0.2 is 0.2°, "
                   "barely visible. Rows slide sideways by sin(angle) pixels per row from the centre row. "
                   "Layer: RandomShear(x_factor=sin(angle)) about the centre.")
    c1.slider("zoom_range [low, high]", *aug.ZOOM_BOUNDS, step=0.05, key="aug_k_zoom",
              help="Each axis is scaled by a factor drawn in [low, high]; below 1 zooms IN (the content grows), "
                   "above 1 zooms out. ImageDataGenerator's zoom_range=0.2 means [0.8, 1.2]. "
                   "Layer: RandomZoom(low - 1, high - 1).")
    c2.toggle("horizontal_flip", key="aug_k_horizontal_flip",
              help="Half the images are mirrored left-right. Layer: RandomFlip('horizontal').")
    c2.toggle("vertical_flip", key="aug_k_vertical_flip",
              help="Half the images are turned upside down, independently of the horizontal flip. "
                   "Layer: RandomFlip('vertical').")
    c3.selectbox("fill_mode", aug.FILL_MODES, key="aug_k_fill_mode",
                 help="What fills the corners that a turn or a shift uncovers: the nearest edge pixel, a mirror "
                      "image, the other side of the image (wrap) or a constant (cval).")
    c3.number_input("cval (with fill_mode constant)", step=1.0, key="aug_k_cval",
                    disabled=st.session_state["aug_k_fill_mode"] != "constant",
                    help="The pixel value outside the image with fill_mode='constant' (0 is black).")
    c4.text_input("rescale", key="aug_k_rescale",
                  help="Pixels are multiplied by this after augmenting, for training (1/255 puts them in [0, 1]). "
                       "It is in the exported code, not in the preview, which shows the images themselves. "
                       "Empty: none.")
    with st.expander("How ImageDataGenerator's parameters map onto Keras 3 layers"):
        st.markdown(
            "| ImageDataGenerator | Keras 3 layer |\n|---|---|\n"
            "| `rotation_range=r` (degrees) | `RandomRotation(r / 360)`: a fraction of a full turn |\n"
            "| `width_shift_range=w`, `height_shift_range=h` | `RandomTranslation(height_factor=h, width_factor=w)` |\n"
            "| `shear_range=s` (degrees) | `RandomShear(x_factor=sin(s))`, about the centre (Keras' own shears "
            "about the top-left corner) |\n"
            "| `zoom_range=z` or `[lo, hi]` | `RandomZoom((lo - 1, hi - 1), (lo - 1, hi - 1))`: below 1, and below 0, "
            "zoom in |\n"
            "| `horizontal_flip`, `vertical_flip` | `RandomFlip('horizontal')`, `RandomFlip('vertical')`, each on "
            "its own |\n"
            "| `fill_mode`, `cval` | `fill_mode`, `fill_value` of each layer |\n"
            "| `rescale` | `Rescaling(rescale)`, last |\n\n"
            "ImageDataGenerator applied one combined transform per image; the layers apply theirs one after "
            "another, in this order, so corners are filled once per layer."
        )
else:
    st.caption(
        "imgaug's README pipeline: each step below can be switched off; with *random order* the steps are "
        "shuffled for every batch. The seed's `ContrastNormalization` is called `LinearContrast` since imgaug 0.4."
    )
    st.toggle("random_order", key="aug_i_random_order",
              help="iaa.Sequential(..., random_order=True): apply the enabled steps in a new order for every batch.")
    for step, params in aug.IMGAUG_STEPS.items():
        cols = st.columns([1.3] + [1] * 3)
        on = cols[0].toggle(STEP_TITLES[step], key=f"aug_i_{step}_enabled",
                            help=f"Switch the {step} step on or off.")
        for i, param in enumerate(params):
            kind, low, high, what = aug.IMGAUG_LIMITS[(step, param)]
            col = cols[1 + i % 3]
            col.slider(f"{PARAM_TITLES[param]}", float(low), float(high), step=STEPS[param],
                       key=f"aug_i_{step}_{param}", disabled=not on, help=f"{what[0].upper()}{what[1:]}.")

c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
c1.file_uploader("Load a recipe (.json)", type=["json"], key="aug_recipe_upload", on_change=load_recipe,
                 help="A recipe downloaded from this page (or written by hand): it sets the engine and every "
                      "parameter above.")
c2.button("Back to the chapters' recipe", key="aug_reset", on_click=reset, args=(engine,),
          icon=":material/restart_alt:",
          help="Keras: the chapters' ImageDataGenerator parameters. imgaug: its README example.")
if ERROR_KEY in st.session_state:
    show_error(aug.AugmentError(st.session_state[ERROR_KEY]), "The parameters above are unchanged.")

# ============================================================================ 3. variations
st.subheader("3 · Variations", divider="gray")
c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
n = int(c1.slider("How many versions (N)", 4, 32, 8, key="aug_n",
                  help="Each version gets its own random draw, as each image of a training batch does."))
seed = int(c2.number_input("Seed", 0, MAX_SEED, step=1, key="aug_random_seed",
                           help="The same seed gives the same versions; change it for others."))
c3.button("New seed", key="aug_new_seed", on_click=new_seed, icon=":material/casino:",
          help="Draw a new seed: new versions of the image.")

try:
    recipe = aug.validate_recipe(keras_recipe() if engine == "keras" else imgaug_recipe())
    if engine == "keras":  # what the Transfer page applies in its input pipeline (widget values do not outlive this page)
        st.session_state[KERAS_RECIPE_KEY] = recipe
    recipe_json = json.dumps(recipe, sort_keys=True)
    out = augmented(img, recipe_json, n, seed)
except CvcoreError as err:
    show_error(err, "Change that value above.")
    st.stop()

per_row = 4 if n <= 8 else 6 if n <= 18 else 8
left, right = st.columns([1, 5])
left.image(img, caption=f"Original: {caption}, {img.shape[0]} x {img.shape[1]}")
for start in range(0, n, per_row):
    cells = right.columns(per_row)
    for i in range(start, min(start + per_row, n)):
        cells[i - start].image(out[i], caption=f"#{i + 1}")
if engine == "keras":
    st.caption("The layers compute in float32; the preview rounds back to 0–255 pixels and leaves out the rescale.")

# ============================================================================ 4. code
st.subheader("4 · The recipe as code", divider="gray")
seeded = st.toggle("Seeds in the code (repeat these exact versions)", key="aug_code_seeded",
                   help="With the seeds, the code gives the versions shown above for these images; training wants "
                        "fresh draws, so leave them out there.")
c1, c2 = st.columns(2)
c1.download_button("Download the recipe (.json)", json.dumps(recipe, indent=2), f"augmentation_{engine}.json",
                   mime="application/json", key="aug_download", icon=":material/download:",
                   help="Load it back above, or pass it to cvcore.augment.augment / keras_layers.")
code = code_for(recipe_json, seed if seeded else None)
c2.download_button("Download the code (.py)", code, f"augmentation_{engine}.py", mime="text/x-python",
                   key="aug_download_code", icon=":material/code:")
st.code(code, language="python")

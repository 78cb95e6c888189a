"""The layer-stack editor of the Train page: widgets only, validation is cvcore's.

The stack lives in session state as a list of layer dicts (the ``"layers"``
of a :func:`cvcore.models.build_model` spec) with a parallel list of stable
ids, so that widgets keep their keys while layers move, and a freshly loaded
preset gets fresh widgets.
"""
from __future__ import annotations

import copy
import itertools

import streamlit as st

LAYERS_KEY, IDS_KEY = "trn_layers", "trn_layer_ids"
ADDABLE = ["Conv2D", "MaxPooling2D", "AveragePooling2D", "Activation", "Dropout", "BatchNormalization",
           "Flatten", "GlobalAveragePooling2D", "Dense"]
ACTIVATIONS = ["relu", "sigmoid", "tanh", "softmax", "linear"]
REGULARIZED = ("Conv2D", "Dense")
REG_KINDS = ["none", "L1", "L2", "L1 + L2"]
DEFAULTS = {
    "Conv2D": {"filters": 32, "kernel_size": 3, "activation": "relu"},
    "MaxPooling2D": {"pool_size": 2},
    "AveragePooling2D": {"pool_size": 2},
    "Activation": {"activation": "relu"},
    "Dropout": {"rate": 0.25},
    "BatchNormalization": {},
    "Flatten": {},
    "GlobalAveragePooling2D": {},
    "Dense": {"units": 64, "activation": "relu"},
}
_ids = itertools.count(1)


def load_stack(layers: list[dict]) -> None:
    """Replace the stack (a preset, say); every layer gets a fresh id and so fresh widgets."""
    st.session_state[LAYERS_KEY] = copy.deepcopy(layers)
    st.session_state[IDS_KEY] = [next(_ids) for _ in layers]


def _move(i: int, j: int) -> None:
    for key in (LAYERS_KEY, IDS_KEY):
        items = st.session_state[key]
        items[i], items[j] = items[j], items[i]


def _remove(i: int) -> None:
    for key in (LAYERS_KEY, IDS_KEY):
        del st.session_state[key][i]


def _insert(position: int, layer_type: str) -> None:
    st.session_state[LAYERS_KEY].insert(position, {"type": layer_type, **copy.deepcopy(DEFAULTS[layer_type])})
    st.session_state[IDS_KEY].insert(position, next(_ids))


def _pair_value(value, default):
    if value is None:
        return default
    return int(value[0]) if isinstance(value, (list, tuple)) else int(value)


def _regularizer_widgets(layer: dict, uid: int) -> None:
    """Kernel, bias and activity regularizers: none, L1, L2 or both, with their lambdas."""
    for arg in ("kernel_regularizer", "bias_regularizer", "activity_regularizer"):
        current = layer.get(arg) or {}
        kind_now = ("L1 + L2" if current.get("l1") and current.get("l2") else "L1" if current.get("l1")
                    else "L2" if current.get("l2") else "none")
        c1, c2, c3 = st.columns([2, 1, 1])
        kind = c1.selectbox(arg.replace("_", " "), REG_KINDS, index=REG_KINDS.index(kind_now), key=f"trn_{uid}_{arg}")
        reg = {}
        if kind in ("L1", "L1 + L2"):
            reg["l1"] = c2.number_input("λ L1", 0.0, 10.0, float(current.get("l1") or 0.01), step=0.001,
                                        format="%.4f", key=f"trn_{uid}_{arg}_l1")
        if kind in ("L2", "L1 + L2"):
            reg["l2"] = c3.number_input("λ L2", 0.0, 10.0, float(current.get("l2") or 0.01), step=0.001,
                                        format="%.4f", key=f"trn_{uid}_{arg}_l2")
        if reg:
            layer[arg] = reg
        else:
            layer.pop(arg, None)


def _arg_widgets(layer: dict, uid: int) -> None:
    """The arguments people change for each layer type, written back into ``layer``."""
    t = layer["type"]
    k = f"trn_{uid}"
    if t == "Conv2D":
        c = st.columns(5)
        layer["filters"] = c[0].number_input("filters", 1, 1024, int(layer.get("filters", 32)), key=f"{k}_filters")
        layer["kernel_size"] = c[1].number_input("kernel", 1, 15, _pair_value(layer.get("kernel_size"), 3),
                                                 key=f"{k}_kernel", help="kernel_size (square)")
        layer["strides"] = c[2].number_input("strides", 1, 8, _pair_value(layer.get("strides"), 1), key=f"{k}_strides")
        layer["padding"] = c[3].selectbox("padding", ["valid", "same"],
                                          index=["valid", "same"].index(layer.get("padding", "valid")), key=f"{k}_pad")
        act = layer.get("activation") or "linear"
        layer["activation"] = c[4].selectbox("activation", ACTIVATIONS, index=ACTIVATIONS.index(act), key=f"{k}_act")
    elif t in ("MaxPooling2D", "AveragePooling2D"):
        c = st.columns(3)
        layer["pool_size"] = c[0].number_input("pool size", 1, 8, _pair_value(layer.get("pool_size"), 2), key=f"{k}_pool")
        stride = c[1].number_input("strides (0: pool size)", 0, 8, _pair_value(layer.get("strides"), 0), key=f"{k}_pst")
        layer["strides"] = int(stride) or None
        layer["padding"] = c[2].selectbox("padding", ["valid", "same"],
                                          index=["valid", "same"].index(layer.get("padding", "valid")), key=f"{k}_ppad")
    elif t == "Activation":
        act = layer.get("activation") or "relu"
        layer["activation"] = st.selectbox("activation", ACTIVATIONS[:4], index=ACTIVATIONS[:4].index(act)
                                           if act in ACTIVATIONS[:4] else 0, key=f"{k}_act")
    elif t == "Dropout":
        layer["rate"] = st.slider("rate", 0.0, 0.9, float(layer.get("rate", 0.25)), 0.05, key=f"{k}_rate",
                                  help="The fraction of inputs set to 0 at each training step.")
    elif t == "Dense":
        c = st.columns(2)
        layer["units"] = c[0].number_input("units", 1, 8192, int(layer.get("units", 64)), key=f"{k}_units")
        act = layer.get("activation") or "linear"
        layer["activation"] = c[1].selectbox("activation", ACTIVATIONS, index=ACTIVATIONS.index(act), key=f"{k}_act")
    else:
        st.caption("No settings." if t != "BatchNormalization" else
                   "Normalises each channel over the batch, then scales and shifts it (4 weights per channel, "
                   "2 of them trainable).")
    if layer.get("activation") == "linear":
        layer["activation"] = None
    if t in REGULARIZED:
        with st.popover("Regularizers", icon=":material/tune:"):
            _regularizer_widgets(layer, uid)


def layer_stack_editor() -> tuple[list[dict], list]:
    """Draw the stack; returns the edited layer dicts and one placeholder per layer.

    The page fills each placeholder with the layer's output shape and parameter
    count once cvcore has validated the edited stack (drawn before it, they
    would show the previous run's values).
    """
    layers, ids = st.session_state[LAYERS_KEY], st.session_state[IDS_KEY]
    n = len(layers)
    slots = []
    for i, (layer, uid) in enumerate(zip(layers, ids)):
        with st.container(border=True):
            with st.container(horizontal=True, vertical_alignment="center", gap="small"):
                regs = [a.split("_")[0] for a in ("kernel_regularizer", "bias_regularizer", "activity_regularizer")
                        if layer.get(a)]
                st.markdown(f"**{i + 1}. {layer['type']}**" + (f" :violet[({', '.join(regs)} regularized)]"
                                                                 if regs else ""), width="content")
                slots.append(st.empty())
                st.space("stretch")
                st.button("↑", key=f"trn_{uid}_up", disabled=i == 0, on_click=_move, args=(i, i - 1),
                          help="Move up", width="content")
                st.button("↓", key=f"trn_{uid}_down", disabled=i == n - 1, on_click=_move, args=(i, i + 1),
                          help="Move down", width="content")
                st.button("✕", key=f"trn_{uid}_del", on_click=_remove, args=(i,), help="Remove this layer",
                          width="content")
            _arg_widgets(layer, uid)
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    new_type = c1.selectbox("Add a layer", ADDABLE, key="trn_add_type")
    position = c2.number_input("at position", 1, n + 1, n + 1, key=f"trn_add_pos_{n}")
    c3.button("Add", key="trn_add", on_click=_insert, args=(int(position) - 1, new_type), icon=":material/add:",
              width="stretch")
    return layers, slots

"""The model as a diagram: Graphviz DOT, drawn by st.graphviz_chart in the browser."""
from __future__ import annotations

_COLOURS = {
    "Conv2D": "#f4a582", "MaxPooling2D": "#92c5de", "AveragePooling2D": "#92c5de", "Dense": "#b2abd2",
    "Dropout": "#e0e0e0", "BatchNormalization": "#fddbc7", "Activation": "#d9f0d3", "Flatten": "#fff7bc",
    "GlobalAveragePooling2D": "#fff7bc",
}


def _summary(layer: dict) -> str:
    t = layer["type"]
    if t == "Conv2D":
        k = layer.get("kernel_size", 3)
        k = f"{k}x{k}" if isinstance(k, int) else "x".join(map(str, k))
        return f"{layer.get('filters')} filters {k}" + (f", {layer['activation']}" if layer.get("activation") else "")
    if t == "Dense":
        return f"{layer.get('units')} units" + (f", {layer['activation']}" if layer.get("activation") else "")
    if t in ("MaxPooling2D", "AveragePooling2D"):
        p = layer.get("pool_size", 2)
        return f"{p}x{p}" if isinstance(p, int) else "x".join(map(str, p))
    if t == "Dropout":
        return f"rate {layer.get('rate')}"
    if t == "Activation":
        return str(layer.get("activation"))
    return ""


def model_dot(spec: dict, shapes: list | None = None, params: list | None = None) -> str:
    """A top-to-bottom diagram: one box per layer with its settings, output shape and parameters."""
    def fmt(shape):
        return " x ".join(str(v) for v in shape if v is not None)

    lines = ['digraph model {', '  rankdir=TB; ranksep=0.25; node [shape=box, style="rounded,filled", '
             'fontname="Helvetica", fontsize=10, margin="0.12,0.04", color="#888888"]; edge [color="#888888"];',
             f'  input [label="Input\\n{fmt(spec["input_shape"])}", fillcolor="#ffffff"];']
    prev = "input"
    for i, layer in enumerate(spec["layers"]):
        label = layer["type"]
        detail = _summary(layer)
        if detail:
            label += f"\\n{detail}"
        if shapes and i < len(shapes):
            label += f"\\n→ {fmt(shapes[i])}"
        if params and i < len(params) and params[i]:
            label += f"\\n{params[i]:,} params"
        lines.append(f'  l{i} [label="{label}", fillcolor="{_COLOURS.get(layer["type"], "#ffffff")}"];')
        lines.append(f"  {prev} -> l{i};")
        prev = f"l{i}"
    lines.append("}")
    return "\n".join(lines)

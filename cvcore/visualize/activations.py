"""Intermediate activations: what each layer outputs for one image."""
from __future__ import annotations

import numpy as np

from ..errors import CvcoreError, ShapeError
from ..model_inputs import model_input, submodel

__all__ = ["activations", "blank_fraction", "layer_names"]


def layer_names(model, *, spatial_only: bool = False) -> list[str]:
    """The model's layer names in order (no input layer).

    Args:
        model: a built Keras model.
        spatial_only: keep only layers whose output is H x W x C (feature maps).

    Example:
        >>> from cvcore.models import PRESETS, build_model
        >>> model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])  # 28 x 28 x 1 -> 10 classes
        >>> layer_names(model, spatial_only=True)
        ['conv2d', 'max_pooling2d', 'conv2d_1', 'max_pooling2d_1']
    """
    names = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = tuple(shape.shape) if shape is not None else ()
        if not spatial_only or len(shape) == 4:
            names.append(layer.name)
    return names


def activations(model, image, layer_names) -> dict:
    """Each chosen layer's output for one image.

    Args:
        model: a built Keras model (Sequential or functional).
        image: one H x W or H x W x C image as a person hands it over, uint8
            (0..255) or float (0..1); resized, converted to the model's
            channels and preprocessed by :func:`cvcore.model_inputs.model_input`.
        layer_names: names of layers of ``model`` (see :func:`layer_names`).

    Returns:
        A dict from layer name to that layer's activation for the image,
        without the batch axis (H' x W' x C for convolutional layers, units
        for dense ones), float32, in the order asked.

    Raises:
        CvcoreError: for a name that is not a layer of the model.
        ShapeError: for an image the model cannot take.

    Example:
        >>> from cvcore.models import PRESETS, build_model
        >>> model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])  # 28 x 28 x 1 -> 10 classes
        >>> acts = activations(model, np.zeros((28, 28), np.uint8), ["conv2d"])
        >>> acts["conv2d"].shape
        (26, 26, 6)
    """
    names = list(layer_names)
    known = {layer.name for layer in model.layers}
    missing = [n for n in names if n not in known]
    if missing:
        raise CvcoreError(f"No layer named {missing[0]!r} in the model; its layers are: {', '.join(known)}.")
    if not names:
        return {}
    # One forward pass of a (cached) functional model over the same layers gives every requested output.
    outputs = submodel(model, names)(model_input(model, image), training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return {n: np.asarray(o)[0].astype(np.float32) for n, o in zip(names, outputs)}


def blank_fraction(activation, *, tol: float = 1e-6) -> float:
    """The fraction of channels that are blank (all zero) for this image: the chapter's sparsity.

    Args:
        activation: H x W x C (or C) activation of one image.
        tol: values at most this in magnitude count as zero.

    Example:
        >>> blank_fraction(np.zeros((4, 4, 2)))
        1.0
    """
    a = np.asarray(activation, dtype=np.float32)
    if a.ndim == 0:
        raise ShapeError("`activation` must have a channel axis.")
    flat = np.abs(a.reshape(-1, a.shape[-1]))
    return float(np.mean(flat.max(axis=0) <= tol))

"""Intermediate activations: what each layer outputs for one image."""
from __future__ import annotations

import numpy as np

from ..errors import CvcoreError, ShapeError

__all__ = ["activations", "blank_fraction", "layer_names"]


def layer_names(model, *, spatial_only: bool = False) -> list[str]:
    """The model's layer names in order (no input layer).

    Args:
        model: a built Keras model.
        spatial_only: keep only layers whose output is H x W x C (feature maps).

    Example:
        >>> layer_names(model, spatial_only=True)  # doctest: +SKIP
        ['conv2d', 'max_pooling2d', 'conv2d_1', 'max_pooling2d_1']
    """
    names = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = tuple(shape.shape) if shape is not None else ()
        if not spatial_only or len(shape) == 4:
            names.append(layer.name)
    return names


def _as_batch(model, image) -> np.ndarray:
    """One image as a person hands it over -> the model's 1 x H x W x C float32 input."""
    from ..training import prepare_images

    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ShapeError(f"`image` must be one H x W or H x W x C image; received shape {arr.shape}.")
    return prepare_images(arr[None], model.input_shape[1:])


def activations(model, image, layer_names) -> dict:
    """Each chosen layer's output for one image.

    Args:
        model: a built Keras model (Sequential or functional).
        image: one H x W or H x W x C image, uint8 (0..255, scaled to [0, 1]
            here) or float already scaled the way the model was trained.
        layer_names: names of layers of ``model`` (see :func:`layer_names`).

    Returns:
        A dict from layer name to that layer's activation for the image,
        without the batch axis (H' x W' x C for convolutional layers, units
        for dense ones), float32, in the order asked.

    Raises:
        CvcoreError: for a name that is not a layer of the model.
        ShapeError: for an image the model cannot take.

    Example:
        >>> acts = activations(model, x_test[0], ["conv2d"])  # doctest: +SKIP
        >>> acts["conv2d"].shape
        (26, 26, 6)
    """
    import keras

    names = list(layer_names)
    known = {layer.name: layer for layer in model.layers}
    missing = [n for n in names if n not in known]
    if missing:
        raise CvcoreError(f"No layer named {missing[0]!r} in the model; its layers are: {', '.join(known)}.")
    if not names:
        return {}
    # A functional model over the same graph: one forward pass gives every requested output.
    # (Keras 3 Sequential models have no .inputs until called; model.inputs exists once built.)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    probe = keras.Model(inputs=inputs, outputs=[known[n].output for n in names])
    outputs = probe(_as_batch(model, image), training=False)
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

"""What ConvNets learn: one technique, one small module; shared plumbing in :mod:`cvcore.model_inputs`.

* :func:`activations`: every channel of chosen layers for one image (:mod:`.activations`).
* :func:`class_activation_map`: Grad-CAM, Grad-CAM++ and Score-CAM (:mod:`.cam`).
* :func:`saliency`: vanilla gradients and SmoothGrad (:mod:`.saliency`).
* :func:`maximize_filter`, :func:`maximize_filters`, :func:`maximize_class`: gradient ascent in
  input space; :func:`first_layer_kernels`: the first convolution's weights as pictures (:mod:`.ascent`).
* :func:`top_predictions`: the most probable classes for one image (:mod:`.predictions`).

Every function takes one image as a person hands it over (uint8, or float)
and a Keras model; :mod:`cvcore.model_inputs` resizes it and applies the preprocessing
the model needs. Modules load on first use, so importing this package does
not import TensorFlow.
"""
import importlib

from .activations import activations, blank_fraction, layer_names

_LAZY = {
    "class_activation_map": "cam",
    "CAM_METHODS": "cam",
    "saliency": "saliency",
    "smoothgrad": "saliency",
    "maximize_filter": "ascent",
    "maximize_class": "ascent",
    "maximize_filters": "ascent",
    "first_layer_kernels": "ascent",
    "top_predictions": "predictions",
}

__all__ = ["activations", "blank_fraction", "layer_names", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        for other, home in _LAZY.items():  # importing .saliency leaves the module, not the function, under
            if home == _LAZY[name]:          # `saliency`: every name of that module is set to its function
                globals()[other] = getattr(module, other)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

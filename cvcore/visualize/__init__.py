"""What ConvNets learn: one technique, one small module.

* :func:`activations`: every channel of chosen layers for one image.
"""
from .activations import activations, blank_fraction, layer_names

__all__ = ["activations", "blank_fraction", "layer_names"]

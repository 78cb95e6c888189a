"""The custom Keras layers cvcore builds into models, as ordinary classes registered with Keras.

* :class:`CentredRandomShear`: ``keras.layers.RandomShear`` about the image centre, as
  Keras 2's ``ImageDataGenerator(shear_range=...)`` sheared (:mod:`cvcore.augment`).
* :class:`ImagenetPreprocessing`: raw 0..255 RGB pixels to an ImageNet base's input, inside
  the model (:mod:`cvcore.transfer`), with the constants of :mod:`cvcore.model_inputs`.

Both are registered under the package ``"cvcore"`` (``"cvcore>CentredRandomShear"``,
``"cvcore>ImagenetPreprocessing"``), so a saved model that holds them loads in Keras' safe
mode once this module is imported (:func:`cvcore.saving.load_model_bytes` does).

This module imports Keras when it is imported, after :func:`cvcore.device.configure`; the
modules that use it import it on first use, so that importing them stays cheap.

Example:
    >>> from cvcore.layers import CentredRandomShear
    >>> layer = CentredRandomShear(x_factor=(0.0, 0.5), y_factor=0.0, seed=1)
    >>> layer(np.zeros((1, 8, 8, 3), np.float32), training=True).shape
    TensorShape([1, 8, 8, 3])
"""
from __future__ import annotations

import numpy as np  # noqa: F401  (the examples use it)

from . import device
from .errors import CvcoreError
from .model_inputs import CAFFE_MEAN_BGR, TF_SCALE

keras = device.keras()

__all__ = ["CentredRandomShear", "ImagenetPreprocessing", "custom_objects"]


@keras.saving.register_keras_serializable(package="cvcore")
class CentredRandomShear(keras.layers.RandomShear):
    """keras.layers.RandomShear about the image centre instead of its top-left corner.

    RandomShear moves input column x to x - s * y (y counted from the top row), so the
    content drifts sideways by up to s * H / 2; here rows are counted from the centre
    row, as ImageDataGenerator(shear_range=...) did. Images only (no bounding boxes).
    """

    def transform_images(self, images, transformation, training=True):
        ops = self.backend
        images = ops.cast(images, self.compute_dtype)
        if not training or transformation is None:
            return images
        unbatched = len(ops.shape(images)) == 3
        if unbatched:
            images = ops.numpy.expand_dims(images, axis=0)
        shape = ops.shape(images)
        h, w = (shape[2], shape[3]) if self.data_format == "channels_first" else (shape[1], shape[2])
        cy = (ops.cast(h, "float32") - 1.0) / 2.0
        cx = (ops.cast(w, "float32") - 1.0) / 2.0
        shear = ops.cast(transformation["shear_factor"], "float32")
        sx, sy = shear[:, 0], shear[:, 1]
        one, zero = ops.numpy.ones_like(sx), ops.numpy.zeros_like(sx)
        # output (x, y) reads input (x + sx * (y - cy), y + sy * (x - cx))
        matrix = ops.numpy.stack([one, sx, -sx * cy, sy, one, -sy * cx, zero, zero], axis=1)
        out = ops.image.affine_transform(images, transform=matrix, interpolation=self.interpolation,
                                         fill_mode=self.fill_mode, fill_value=self.fill_value,
                                         data_format=self.data_format)
        return ops.numpy.squeeze(out, axis=0) if unbatched else out

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        raise NotImplementedError("CentredRandomShear transforms images only.")


@keras.saving.register_keras_serializable(package="cvcore")
class ImagenetPreprocessing(keras.layers.Layer):
    """Raw 0..255 RGB pixels -> an ImageNet model's input, as the model's first layer. No weights.

    Args:
        mode: ``"caffe"`` (RGB -> BGR, minus ImageNet's mean pixel: VGG16, ResNet50) or
            ``"tf"`` (x / 127.5 - 1: InceptionV3, MobileNetV2), as Keras' ``preprocess_input``.

    Example:
        >>> ImagenetPreprocessing("tf")(np.full((1, 1, 1, 3), 255.0, np.float32)).numpy().ravel().tolist()
        [1.0, 1.0, 1.0]
    """

    def __init__(self, mode="caffe", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("caffe", "tf"):
            raise CvcoreError(f"`mode` must be 'caffe' or 'tf'; received {mode!r}.")
        self.mode = mode

    def call(self, x):
        ops = keras.ops
        x = ops.cast(x, self.compute_dtype)
        if self.mode == "tf":
            return x / TF_SCALE - 1.0
        x = ops.flip(x, axis=-1)
        return x - ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def custom_objects(*names: str) -> dict:
    """This module's layers by their registered names, for ``keras.saving.load_model``.

    Args:
        *names: class names to include (``"CentredRandomShear"``, ...); none: every layer.

    Returns:
        ``{"cvcore>ClassName": the class}``.

    Example:
        >>> sorted(custom_objects())
        ['cvcore>CentredRandomShear', 'cvcore>ImagenetPreprocessing']
        >>> custom_objects("ImagenetPreprocessing")
        {'cvcore>ImagenetPreprocessing': <class 'cvcore.layers.ImagenetPreprocessing'>}
    """
    every = {cls.__name__: cls for cls in (CentredRandomShear, ImagenetPreprocessing)}
    return {f"cvcore>{name}": cls for name, cls in every.items() if not names or name in names}

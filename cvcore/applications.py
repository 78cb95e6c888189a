"""Famous ImageNet models (Keras applications) with their weights, preprocessing and class names.

ImageNet weights come, in this order, from:

1. a folder the operator configures, ``$CVCORE_WEIGHTS_DIR``, holding the
   files under Keras' own names (``vgg16_weights_tf_dim_ordering_tf_kernels.h5``, ...);
2. Keras' cache, ``~/.keras/models/``, where ``keras.applications``
   downloads them once on a machine with internet;
3. a download through ``keras.applications`` (which fills that cache).

When none works, :class:`~cvcore.errors.WeightsUnavailableError` says why and
how to provide them; ``weights=None`` gives the same architecture with random
weights (the seed's "train VGG16 from scratch", and enough to explore
structure). A weights file given by path (an operator's or a user's upload)
is loaded into the architecture, or refused if it does not fit.

The 1,000 ImageNet class names ship with the app
(``cvcore/resources/imagenet_class_index.json``); nothing is downloaded for them.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from . import device
from .errors import CvcoreError, WeightsUnavailableError

__all__ = ["APPLICATIONS", "load_application", "ensure_weights", "imagenet_class_names", "weights_file", "WEIGHTS_DIR_ENV"]

WEIGHTS_DIR_ENV = "CVCORE_WEIGHTS_DIR"
RESOURCES = Path(__file__).resolve().parent / "resources"

# name -> constructor, default input size, preprocessing (cvcore.model_inputs), weight files (top, no top), MB
APPLICATIONS = {
    "vgg16": dict(title="VGG16", ctor="VGG16", size=224, preprocessing="caffe",
                  files=("vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                         "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"), mb=(528, 56)),
    "resnet50": dict(title="ResNet50", ctor="ResNet50", size=224, preprocessing="caffe",
                     files=("resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"), mb=(98, 90)),
    "inceptionv3": dict(title="InceptionV3", ctor="InceptionV3", size=299, preprocessing="tf",
                        files=("inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                               "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"), mb=(92, 84)),
    "mobilenetv2": dict(title="MobileNetV2", ctor="MobileNetV2", size=224, preprocessing="tf",
                        files=("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
                               "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"), mb=(14, 9)),
}


def _check_name(name: str) -> dict:
    if name not in APPLICATIONS:
        raise CvcoreError(f"Unknown model {name!r}; choose one of {', '.join(APPLICATIONS)}.")
    return APPLICATIONS[name]


def weights_file(name: str, *, include_top: bool = True):
    """The local ImageNet weights file of ``name``: in ``$CVCORE_WEIGHTS_DIR`` or Keras' cache; None when neither has it.

    Example:
        >>> weights_file("vgg16") is None or weights_file("vgg16").name.startswith("vgg16")
        True
    """
    spec = _check_name(name)
    filename = spec["files"][0 if include_top else 1]
    folders = [os.environ.get(WEIGHTS_DIR_ENV), os.path.join(os.environ.get("KERAS_HOME", Path.home() / ".keras"), "models")]
    for folder in filter(None, folders):
        candidate = Path(folder).expanduser() / filename
        if candidate.is_file():
            return candidate
    return None


def ensure_weights(name: str, *, include_top: bool = True) -> Path:
    """The local ImageNet weights file of ``name``, fetched once into Keras' cache when it is missing.

    Args:
        name: a key of :data:`APPLICATIONS`.
        include_top: the file with the ImageNet classifier, or the smaller one
            without it (what transfer learning uses).

    Returns:
        The file's path (in ``$CVCORE_WEIGHTS_DIR`` or Keras' cache).

    Raises:
        WeightsUnavailableError: offline and not there; the message says where to put it.

    Example:
        >>> # Downloads 56 MB once when the file is not there yet, so not run as a test:
        >>> ensure_weights("vgg16", include_top=False).name  # doctest: +SKIP
        'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5'
    """
    local = weights_file(name, include_top=include_top)
    if local is not None:
        return local
    size = 75 if name == "inceptionv3" else 32  # the smallest model that fetches the same file
    load_application(name, weights="imagenet", include_top=include_top,
                     input_shape=None if include_top else (size, size, 3))
    local = weights_file(name, include_top=include_top)
    if local is None:
        spec = _check_name(name)
        raise WeightsUnavailableError(f"ImageNet weights for {spec['title']} were fetched but are not in Keras' cache; "
                                      f"put {spec['files'][0 if include_top else 1]} into ${WEIGHTS_DIR_ENV}.")
    return local


def load_application(name: str, *, weights="imagenet", include_top: bool = True, input_shape=None):
    """A Keras application, tagged with its preprocessing for :mod:`cvcore.visualize`.

    Args:
        name: ``"vgg16"``, ``"resnet50"``, ``"inceptionv3"`` or ``"mobilenetv2"``.
        weights: ``"imagenet"`` (a local file, Keras' cache, or a download),
            None (random initialisation), or the path of a weights file.
        include_top: with the ImageNet classifier (1,000 classes; the input
            size is then fixed) or without it.
        input_shape: ``(H, W, 3)`` without the top; the model's default otherwise.

    Returns:
        A ``keras.Model``.

    Raises:
        WeightsUnavailableError: when ImageNet weights can be had neither
            locally nor by download, or a weights file does not fit the
            model; the message says how to provide them.
        CvcoreError: for an unknown name or a bad ``input_shape``.

    Example:
        >>> model = load_application("mobilenetv2", weights=None)
        >>> model.input_shape
        (None, 224, 224, 3)
    """
    spec = _check_name(name)
    if input_shape is not None:
        if include_top:
            raise CvcoreError("`input_shape` can only be set without the top (`include_top=False`); "
                              f"with it, {spec['title']} takes {spec['size']} x {spec['size']} x 3.")
        if len(tuple(input_shape)) != 3 or tuple(input_shape)[2] != 3 or min(tuple(input_shape)[:2]) < 32:
            raise CvcoreError(f"`input_shape` must be (height, width, 3) with sides of at least 32; received {input_shape!r}.")
    keras = device.keras()

    from .model_inputs import set_preprocessing

    ctor = getattr(keras.applications, spec["ctor"])
    kwargs = dict(include_top=include_top, input_shape=None if input_shape is None else tuple(int(v) for v in input_shape))
    filename = spec["files"][0 if include_top else 1]
    how = f"put {filename} ({spec['mb'][0 if include_top else 1]} MB) into ${WEIGHTS_DIR_ENV} or ~/.keras/models/"
    if weights is None:
        model = ctor(weights=None, **kwargs)
    elif isinstance(weights, (str, os.PathLike)) and weights != "imagenet":
        path = Path(weights)
        if not path.is_file():
            raise WeightsUnavailableError(
                f"`weights` must be 'imagenet', None or the path of a weights file; there is no file at {str(path)!r}.")
        model = ctor(weights=None, **kwargs)
        try:
            model.load_weights(str(path))
        except Exception as err:  # h5py and Keras raise many kinds for a file that does not fit
            raise WeightsUnavailableError(
                f"{path.name!r} does not fit {spec['title']} {'with' if include_top else 'without'} its top "
                f"({type(err).__name__}: {str(err)[:200]}). Use Keras' file {filename}."
            ) from None
    elif weights == "imagenet":
        local = weights_file(name, include_top=include_top)
        try:
            if local is not None:
                model = ctor(weights=None, **kwargs)
                model.load_weights(str(local))
            else:
                model = ctor(weights="imagenet", **kwargs)
        except Exception as err:  # Keras raises a bare Exception for a failed fetch
            reason = str(err).split(" -- ")[-1].strip()[:200] or type(err).__name__
            raise WeightsUnavailableError(
                f"ImageNet weights for {spec['title']} could not be had ({reason}). On a machine with internet Keras "
                f"downloads them once into ~/.keras/models/. Offline, {how}."
            ) from None
    else:
        raise CvcoreError(f"`weights` must be 'imagenet', None or a file path; received {weights!r}.")
    return set_preprocessing(model, spec["preprocessing"])


@functools.lru_cache(maxsize=1)
def _class_index() -> dict:
    return json.loads((RESOURCES / "imagenet_class_index.json").read_text())


def imagenet_class_names() -> list:
    """The 1,000 ImageNet class names in Keras' order, readable (``"Irish terrier"``), from the shipped file.

    Example:
        >>> imagenet_class_names()[184]
        'Irish terrier'
    """
    index = _class_index()
    return [index[str(i)][1].replace("_", " ") for i in range(len(index))]

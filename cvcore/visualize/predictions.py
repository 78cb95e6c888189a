"""What the model says about one image: its top classes with their probabilities."""
from __future__ import annotations

import numpy as np

from .. import outputs
from ..errors import CvcoreError
from ..model_inputs import model_input

__all__ = ["top_predictions"]


def top_predictions(model, image, k: int = 5, class_names=None) -> list:
    """The ``k`` most probable classes of ``model`` for one image.

    Args:
        model: a Keras classifier (its output: one score per class).
        image: one H x W x C image as a person hands it over (uint8 or float);
            resized and preprocessed for the model here.
        k: how many classes, >= 1 (at most the number of classes).
        class_names: a name per class; ``"class i"`` when None.

    Returns:
        A list of ``(class_index, name, probability)``, most probable first.
        The outputs are read by the model's ending
        (:func:`cvcore.outputs.probabilities`): a softmax's as they are, the
        softmax of the logits beneath a sigmoid, the softmax of logits; one
        output column is the probability of the positive class.

    Example:
        >>> from cvcore.models import PRESETS, build_model
        >>> model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])  # 28 x 28 x 1 -> 10 classes
        >>> top = top_predictions(model, np.zeros((28, 28), np.uint8), k=3, class_names=list("0123456789"))
        >>> len(top), sorted(p for _, _, p in top) == [p for _, _, p in top][::-1]
        (3, True)
        >>> # With VGG16 and ImageNet's weights (a download), on a photo of a cat:
        >>> top_predictions(vgg16, photo, k=1)  # doctest: +SKIP
        [(281, 'tabby', 0.61)]
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise CvcoreError(f"`k` must be a whole number >= 1; received {k!r}.")
    out = np.asarray(model(model_input(model, image), training=False))
    if out.ndim != 2:
        raise CvcoreError(f"The model's output has shape {out.shape}; a classifier gives one score per class.")
    probs = outputs.probabilities(out[0], outputs.output_kind(model))
    n = probs.shape[0]
    if class_names is not None and len(class_names) != n:
        raise CvcoreError(f"`class_names` has {len(class_names)} names; the model has {n} classes.")
    order = np.argsort(-probs)[: min(int(k), n)]
    return [(int(i), str(class_names[i]) if class_names is not None else f"class {i}", float(probs[i])) for i in order]

"""cvcore.training: history, progress, cooperative stop, optimizers, fast mode, accuracy bars."""
import os
import time

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cvcore import device  # noqa: E402
from cvcore.data import load_dataset  # noqa: E402
from cvcore.errors import CvcoreError, ShapeError  # noqa: E402
from cvcore.models import PRESETS, build_model, preset  # noqa: E402
from cvcore.training import (describe_progress, fast_steps_per_execution, make_optimizer,  # noqa: E402
                             prepare_images, train)

BASIC = "Basic CNN (6 and 12 filters)"
MNIST_CNN = "Keras mnist_cnn (32-64 convolutions, dropout)"
MNIST_CNN_BATCH = 64
KEYS = {"loss", "accuracy", "val_loss", "val_accuracy", "stopped", "epochs_run", "steps_run",
        "partial_epoch", "seconds", "epoch_seconds", "steps_per_execution", "fast"}


@pytest.fixture(scope="module")
def fashion():
    device.configure()
    return load_dataset("fashion_mnist")


@pytest.fixture(scope="module")
def small(fashion):
    """512 training and 256 validation images: enough to exercise, cheap to run."""
    (x, y), (xt, yt), _ = fashion
    return (x[:512], y[:512]), (xt[:256], yt[:256])


def _iterations(model):
    optimizer = getattr(model, "optimizer", None)  # absent before compile
    return int(optimizer.iterations.numpy()) if optimizer is not None else 0


def test_history_and_progress(small):
    model = build_model(PRESETS[BASIC])
    reports = []
    history = train(model, small, epochs=2, batch_size=32, on_progress=reports.append, progress_interval=0)
    assert KEYS <= set(history)
    assert len(history["loss"]) == len(history["accuracy"]) == 2
    assert len(history["val_loss"]) == len(history["val_accuracy"]) == 2
    assert all(0.0 <= a <= 1.0 for a in history["accuracy"] + history["val_accuracy"])
    assert history["stopped"] is False and history["partial_epoch"] is None
    assert history["epochs_run"] == 2 and history["steps_run"] == 2 * 16 == _iterations(model)
    assert history["steps_per_execution"] == 1 and history["fast"] is False
    # Reports: a start, one per batch (interval 0), a validation notice and an end per epoch.
    train_reports = [r for r in reports if r["phase"] == "train"]
    ends = [r for r in reports if r["phase"] == "epoch_end"]
    assert len(train_reports) == 1 + 2 * 16
    assert [r["epoch"] for r in ends] == [1, 2]
    assert ends[-1]["val_accuracy"] == pytest.approx(history["val_accuracy"][-1])
    assert {"epoch", "epochs", "step", "steps", "loss", "accuracy", "elapsed"} <= set(train_reports[-1])
    assert train_reports[-1]["steps"] == 16 and train_reports[-1]["epochs"] == 2
    # What the pages show: "Epoch 1 of 2" all through the first epoch, and a bar that fills only at the end.
    described = [describe_progress(r) for r in reports]
    first_end = reports.index(ends[0])
    assert all(text.startswith("Epoch 1 of 2,") for _, text in described[:first_end + 1])
    assert all(text.startswith("Epoch 2 of 2,") for _, text in described[first_end + 1:])
    fractions = [frac for frac, _ in described]
    assert fractions == sorted(fractions), "the bar never moves backwards"
    assert max(fractions[:-1]) < 1.0 and fractions[-1] == 1.0
    assert described[first_end][0] == 0.5


def test_describe_progress_of_every_phase():
    assert describe_progress(None) == describe_progress({}) == (0.0, "Starting…")
    frac, text = describe_progress({"phase": "train", "epoch": 2, "epochs": 4, "step": 50, "steps": 100,
                                    "loss": 0.25, "accuracy": 0.9, "stage": "Fine-tuning"})
    assert frac == pytest.approx((1 + 50 / 101) / 4)
    assert text == "Fine-tuning: epoch 2 of 4, step 50 of 100, loss 0.2500, accuracy 0.9000"
    frac, text = describe_progress({"phase": "validate", "epoch": 1, "epochs": 1, "step": 9, "steps": 9})
    assert text.endswith("validating") and frac == pytest.approx(0.9)
    assert describe_progress({"phase": "extract", "stage": "VGG16", "done": 3, "total": 4}) == (
        0.75, "VGG16: 3 of 4 batches")
    assert describe_progress({"phase": "load", "done": 0, "total": None}) == (0.0, "Loading…")
    assert describe_progress({"phase": "evaluate"}) == (1.0, "Evaluating on the test set…")


def test_progress_is_throttled(small):
    reports = []
    train(build_model(PRESETS[BASIC]), small, epochs=1, batch_size=8, on_progress=reports.append,
          progress_interval=3600)
    # The start, the validation notice and the epoch's end; not one per batch.
    assert [r["phase"] for r in reports] == ["train", "validate", "epoch_end"]


def test_without_validation_and_with_float_images(small):
    (x, y), _ = small
    history = train(build_model(PRESETS[BASIC]), ((x.astype("float32") / 255, y), (None, None)),
                    epochs=1, batch_size=64)
    assert history["val_loss"] == [] and history["val_accuracy"] == []
    assert len(history["loss"]) == 1


def test_prepare_images():
    x = np.full((3, 28, 28), 255, np.uint8)
    out = prepare_images(x, (28, 28, 1))
    assert out.shape == (3, 28, 28, 1) and out.dtype == np.float32 and out.max() == 1.0
    assert prepare_images(x, (784,)).shape == (3, 784)
    with pytest.raises(ShapeError, match=r"\(28, 28\).*\(32, 32, 3\)"):
        prepare_images(x, (32, 32, 3))
    with pytest.raises(ShapeError, match="dtype"):
        prepare_images(x.astype(np.int64), (28, 28, 1))


@pytest.mark.parametrize("n", [1, 5])
def test_stop_within_one_batch(small, n):
    model = build_model(PRESETS[BASIC])

    def should_stop():
        return _iterations(model) >= n

    history = train(model, small, epochs=3, batch_size=32, should_stop=should_stop)
    ran = _iterations(model)
    assert ran in (n, n + 1)
    assert history["stopped"] is True and history["steps_run"] == ran
    # The interrupted epoch is dropped from the lists and returned apart.
    assert history["epochs_run"] == 0 and history["loss"] == [] and history["val_accuracy"] == []
    assert history["partial_epoch"]["epoch"] == 1 and history["partial_epoch"]["steps"] == ran
    assert "loss" in history["partial_epoch"]
    assert model.stop_training is False  # ready for another fit


def test_stop_in_second_epoch_keeps_the_first(small):
    model = build_model(PRESETS[BASIC])
    history = train(model, small, epochs=3, batch_size=32, should_stop=lambda: _iterations(model) >= 20)
    assert history["stopped"] and history["epochs_run"] == 1
    assert len(history["loss"]) == len(history["val_accuracy"]) == 1
    assert history["partial_epoch"]["epoch"] == 2
    assert _iterations(model) in (20, 21)


def test_stop_before_start_trains_nothing(small):
    model = build_model(PRESETS[BASIC])
    history = train(model, small, epochs=2, batch_size=32, should_stop=lambda: True)
    assert history["stopped"] and history["steps_run"] == 0 and history["epochs_run"] == 0


def test_fast_mode_history_and_stop_within_a_chunk(small):
    model = build_model(PRESETS[BASIC])
    assert fast_steps_per_execution(model, 32) == 64
    history = train(model, small, epochs=2, batch_size=32, fast=True, seed=1)
    assert history["fast"] is True and history["steps_per_execution"] == 16  # capped at the epoch's 16 batches
    assert len(history["val_accuracy"]) == 2 and _iterations(model) == 32
    assert model.steps_per_execution == 1  # restored

    (x, y), val = small
    big = ((np.concatenate([x] * 8), np.concatenate([y] * 8)), val)  # 128 batches per epoch
    model = build_model(PRESETS[BASIC])
    history = train(model, big, epochs=2, batch_size=32, fast=True, should_stop=lambda: _iterations(model) >= 3)
    spe = history["steps_per_execution"]
    assert spe == 64
    assert history["stopped"] and 3 <= _iterations(model) <= 3 + spe
    assert history["steps_run"] == _iterations(model)


def test_fast_mode_keeps_costly_models_responsive():
    assert fast_steps_per_execution(build_model(PRESETS[MNIST_CNN]), 32) == 1
    assert 1 < fast_steps_per_execution(build_model(PRESETS["64 filters 5x5, Dense 100"]), 32) < 64


def test_training_continues_with_the_same_optimizer(small):
    model = build_model(PRESETS[BASIC])
    train(model, small, epochs=1, batch_size=32, optimizer={"name": "sgd", "learning_rate": 0.05})
    train(model, small, epochs=1, batch_size=32, optimizer={"name": "sgd", "learning_rate": 0.05})
    assert _iterations(model) == 32  # the optimizer (and its state) carried on
    train(model, small, epochs=1, batch_size=32, optimizer="adam")
    assert type(model.optimizer).__name__ == "Adam" and _iterations(model) == 16


def test_a_model_compiled_elsewhere_is_used_as_compiled(small):
    import keras

    model = build_model(PRESETS[BASIC])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = train(model, small, epochs=1, batch_size=32, optimizer="rmsprop")
    assert type(model.optimizer).__name__ == "SGD" and len(history["accuracy"]) == 1


@pytest.mark.parametrize(
    "optimizer,cls,settings",
    [
        ("adam", "Adam", {}),
        ("SGD", "SGD", {}),
        ({"name": "sgd", "learning_rate": 0.01, "momentum": 0.9, "nesterov": True}, "SGD",
         {"momentum": 0.9, "nesterov": True}),
        ({"name": "adam", "learning_rate": 0.002, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}, "Adam",
         {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}),
        ({"name": "rmsprop", "learning_rate": 0.001, "rho": 0.8}, "RMSprop", {"rho": 0.8}),
    ],
)
def test_optimizers(optimizer, cls, settings):
    opt = make_optimizer(optimizer)
    assert type(opt).__name__ == cls
    config = opt.get_config()
    for key, value in settings.items():
        assert config[key] == pytest.approx(value)
    if isinstance(optimizer, dict):
        assert config["learning_rate"] == pytest.approx(optimizer["learning_rate"])


@pytest.mark.parametrize(
    "optimizer,fragment",
    [
        ("adagrad", "'adagrad'"),
        (42, "42"),
        ({"learning_rate": 0.1}, "None"),
        ({"name": "sgd", "learning_rate": -1}, "-1"),
        ({"name": "sgd", "learning_rate": "fast"}, "'fast'"),
        ({"name": "sgd", "momentum": 1.5}, "1.5"),
        ({"name": "sgd", "nesterov": "yes"}, "'yes'"),
        ({"name": "sgd", "nesterov": True}, "momentum"),
        ({"name": "adam", "momentum": 0.9}, "'momentum'"),
        ({"name": "adam", "beta_1": 1.0}, "1.0"),
    ],
)
def test_bad_optimizers_are_named(optimizer, fragment):
    with pytest.raises(CvcoreError) as info:
        make_optimizer(optimizer)
    assert fragment in str(info.value)


def test_bad_arguments(small):
    model = build_model(PRESETS[BASIC])
    for kwargs, fragment in [
        ({"epochs": 0, "batch_size": 32}, "`epochs`"),
        ({"epochs": 1, "batch_size": 2.5}, "`batch_size`"),
        ({"epochs": 1, "batch_size": 32, "on_progress": "print"}, "`on_progress`"),
        ({"epochs": 1, "batch_size": 32, "optimizer": "adagrad"}, "'adagrad'"),
        ({"epochs": 1, "batch_size": 32, "fast": "yes"}, "`fast`"),
    ]:
        with pytest.raises(CvcoreError, match=fragment):
            train(model, small, **kwargs)
    with pytest.raises(CvcoreError, match="`data`"):
        train(model, "data", epochs=1, batch_size=32)
    (x, y), val = small
    with pytest.raises(ShapeError, match="from 3 to 12.*10 classes"):
        train(model, ((x, y + 3), val), epochs=1, batch_size=32)
    with pytest.raises(ShapeError, match="one class index per image"):
        train(model, ((x, y[:10]), val), epochs=1, batch_size=32)
    with pytest.raises(ShapeError, match=r"\(None, 22, 22, 64\)"):
        train(build_model(preset("Three convolutions, no max pooling (conv base)")), small, epochs=1, batch_size=32)
    assert _iterations(model) == 0  # nothing was trained


def test_logits_model_trains(small):
    spec = preset(BASIC)
    spec["layers"][-1].pop("activation")  # a linear last layer: logits
    model = build_model(spec)
    history = train(model, small, epochs=2, batch_size=32)
    assert model.loss.get_config()["from_logits"] is True
    assert history["loss"][1] < history["loss"][0]


# ---------------------------------------------------------------------------
# quality bars: full Fashion-MNIST, 3 epochs, fast mode, test accuracy


@pytest.mark.slow
def test_basic_preset_reaches_084_in_3_epochs(fashion):
    import keras

    keras.utils.set_random_seed(0)
    (x, y), (xt, yt), _ = fashion
    model = build_model(PRESETS[BASIC])
    start = time.perf_counter()
    history = train(model, ((x, y), (None, None)), epochs=3, batch_size=32, fast=True, seed=0)
    _, accuracy = model.evaluate(prepare_images(xt, (28, 28, 1)), yt, batch_size=1024, verbose=0)
    print(f"basic preset: test accuracy {accuracy:.4f}, {time.perf_counter() - start:.1f} s, "
          f"train accuracy {history['accuracy']}")
    assert model.count_params() == 3_730
    assert accuracy >= 0.84


@pytest.mark.slow
def test_mnist_cnn_preset_reaches_090_in_3_epochs(fashion):
    # The costliest test of the suite (about 12 million multiply-accumulates per
    # image), so it trains one epoch at a time and ends as soon as the bar is
    # met on the test set, never after more than 3 epochs.
    import keras

    keras.utils.set_random_seed(0)
    (x, y), (xt, yt), _ = fashion
    model = build_model(PRESETS[MNIST_CNN])
    assert model.count_params() == 1_199_882
    xt = prepare_images(xt, (28, 28, 1))
    start, accuracies = time.perf_counter(), []
    for epoch in range(1, 4):
        train(model, ((x, y), (None, None)), epochs=1, batch_size=MNIST_CNN_BATCH, fast=True, seed=epoch)
        accuracies.append(model.evaluate(xt, yt, batch_size=1024, verbose=0)[1])
        if accuracies[-1] >= 0.90:
            break
    print(f"mnist_cnn preset: test accuracy by epoch {accuracies}, {time.perf_counter() - start:.1f} s")
    assert accuracies[-1] >= 0.90


def test_train_takes_tf_data_datasets_as_they_are():
    """The Transfer page's pipelines: batched datasets go to fit as they are, validation included."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (40, 28, 28, 1)).astype(np.float32)
    y = (np.arange(40) % 10).astype(np.int32)
    train_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    val_ds = tf.data.Dataset.from_tensor_slices((x[:20], y[:20])).batch(8)
    model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])
    reports = []
    h = train(model, (train_ds, val_ds), epochs=2, batch_size=16, on_progress=reports.append)
    assert len(h["loss"]) == len(h["val_accuracy"]) == 2 and h["steps_run"] == 6
    assert {r["steps"] for r in reports} == {3}
    h = train(model, (train_ds, None), epochs=1, batch_size=16)
    assert h["val_loss"] == [] and len(h["loss"]) == 1
    with pytest.raises(CvcoreError, match="validation data must be a tf.data dataset"):
        train(model, (train_ds, (x, y)), epochs=1, batch_size=16)
    with pytest.raises(CvcoreError, match="known length"):
        train(model, (train_ds.repeat(), None), epochs=1, batch_size=16)

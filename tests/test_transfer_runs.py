"""cvcore.transfer_runs, cvcore.pipeline and the transfer additions: every training mode end to end on tiny
generated folders, the feature cache reused and invalidated through a run, stops, counts against Keras."""
import os

import numpy as np
import pytest

from cvcore import applications, pipeline, samples, transfer
from cvcore.errors import CvcoreError, InvalidImageError, WeightsUnavailableError
from cvcore.folders import ImageDataset, scan_image_folder
from cvcore.transfer_runs import (MODES, TransferConfig, features_cache_key, logistic_model, mode_costs, mode_params,
                                  run_transfer, select_train, transfer_summary)
from cvcore import model_inputs as inputs

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.usefixtures("offline_weights")  # conftest.py: nothing downloads


def trainable_count(model):
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """10 digit classes x 6 images, 28 px RGB PNGs: 2 per class set aside for validation."""
    return samples.write_dataset_folder(tmp_path_factory.mktemp("tl") / "digits", "digits", per_class=6, size=28)


@pytest.fixture(scope="module")
def ds(folder):
    return ImageDataset.from_scan(scan_image_folder(folder), per_class=2)


class Ctx:
    """A job context that records reports and stops when told to."""

    def __init__(self, stop_when=None):
        self.reports, self.stop_when = [], stop_when

    def report(self, p):
        self.reports.append(p)

    def should_stop(self):
        return bool(self.stop_when and self.stop_when(self.reports))


def config(mode, **kw):
    return TransferConfig(mode=mode, **{"base": "vgg16", "image_size": 32, "weights": None, "epochs": 2,
                                        "finetune_epochs": 1, **kw})


# ----------------------------------------------------------------------------- every mode end to end

@pytest.mark.parametrize("mode", MODES)
def test_every_mode_trains_reports_and_is_judged_on_the_saved_split(mode, ds, tmp_path):
    ctx = Ctx()
    result = run_transfer(config(mode), ds, ctx, cache_dir=tmp_path)
    phases = 2 if mode == "finetune" else 1
    epochs = 3 if mode == "finetune" else 2
    assert not result.stopped and len(result.phases) == phases
    assert [e for _, e in result.phases] == ([2, 1] if mode == "finetune" else [2])
    assert all(len(result.history[k]) == epochs for k in ("loss", "accuracy", "val_loss", "val_accuracy"))
    assert len(result.epoch_seconds) == epochs
    # Judged on the data set's own validation images, in the split's order.
    val_paths, val_labels = ds.subset("validation")
    assert result.val_images.shape == (len(val_paths), 32, 32, 3) and result.val_images.dtype == np.uint8
    np.testing.assert_array_equal(result.val_labels, val_labels)
    assert result.evaluation.confusion.sum() == len(val_paths) and result.evaluation.proba.shape == (20, 10)
    assert result.class_names == ds.classes and result.train_images == 40
    # The model takes raw pixels; its counts are Keras'.
    assert inputs.preprocessing_of(result.model) == "raw"
    assert result.params["total"] == result.model.count_params()
    assert result.params["trainable"] == trainable_count(result.model)
    if mode in ("frozen", "features"):
        assert result.params["non_trainable"] == 14_714_688  # VGG16 without top, frozen
    if mode == "scratch":
        assert result.params["non_trainable"] == 0
    if mode == "finetune":  # block5 unfrozen: 3 convolutions of 2,359,808 weights, and the head
        assert result.params["trainable"] == 3 * 2_359_808 + 512 * 10 + 10
    # Live curves: reports carry the history so far and the stages.
    phases_seen = {p.get("phase") for p in ctx.reports}
    assert {"load", "epoch_end", "evaluate"} <= phases_seen
    assert ("extract" in phases_seen) == (mode in ("features", "finetune"))
    assert len(ctx.reports[-1]["history"]["loss"]) == epochs
    # The head trained on cached features is the transfer model's head: the model predicts as evaluated.
    proba = result.model.predict(result.val_images.astype(np.float32), verbose=0)
    np.testing.assert_allclose(proba, result.evaluation.proba, atol=1e-5)


def test_the_baseline_is_the_seeds_logistic_regression_with_plain_sgd(ds, tmp_path):
    result = run_transfer(config("baseline"), ds, cache_dir=tmp_path)
    assert [type(layer).__name__ for layer in result.model.layers] == ["InputLayer", "Rescaling", "Flatten", "Dense"]
    assert result.model.count_params() == 32 * 32 * 3 * 10 + 10 == logistic_model((32, 32, 3), 10).count_params()
    opt = result.model.optimizer
    assert type(opt).__name__ == "SGD" and float(opt.momentum) == 0.0
    assert float(keras.ops.convert_to_numpy(opt.learning_rate)) == pytest.approx(0.01)


def test_augmentation_runs_in_the_pipeline_and_imgaug_recipes_are_refused(ds, tmp_path):
    recipe = {"engine": "keras", "rotation_range": 30, "horizontal_flip": True}
    result = run_transfer(config("frozen", augment=recipe, epochs=1), ds, cache_dir=tmp_path)
    assert "augmented" in result.phases[0][0] and len(result.history["loss"]) == 1
    with pytest.raises(CvcoreError, match="Keras-engine recipe"):
        run_transfer(config("frozen", augment={"engine": "imgaug"}), ds)


# ----------------------------------------------------------------------------- the feature cache through runs

def test_cached_features_are_reused_across_runs_and_invalidated_when_a_file_changes(tmp_path):
    root = samples.write_dataset_folder(tmp_path / "d", "digits", per_class=4, size=28)
    cache = tmp_path / "cache"
    first_ds = ImageDataset.from_scan(scan_image_folder(root), per_class=1)
    first = run_transfer(config("features"), first_ds, cache_dir=cache)
    assert first.extraction["cached"] is False and first.extraction["images"] == 40
    files = sorted(cache.glob("features-*.npy"))
    assert len(files) == 2  # training and validation features
    ctx = Ctx()
    again = run_transfer(config("features"), first_ds, ctx, cache_dir=cache)
    assert again.extraction["cached"] is True
    assert not any(p.get("phase") == "extract" for p in ctx.reports)  # the base never ran
    # Another input size, or another choice of images, is another key.
    assert run_transfer(config("features", image_size=40), first_ds, cache_dir=cache).extraction["cached"] is False
    assert run_transfer(config("features", max_per_class=2), first_ds, cache_dir=cache).extraction["cached"] is False
    # A file changed (same name, new content): the data set's fingerprint changes, the features are computed again.
    target = root / first_ds.files[0]
    img = np.asarray(pipeline.load_resized(target, 28))
    from PIL import Image

    Image.fromarray(255 - img).save(target)
    os.utime(target, ns=(1, 1))
    changed = ImageDataset.from_scan(scan_image_folder(root), per_class=1)
    assert changed.fingerprint() != first_ds.fingerprint()
    assert run_transfer(config("features"), changed, cache_dir=cache).extraction["cached"] is False


def test_the_cache_key_names_the_files_and_the_size(ds):
    paths, _ = select_train(ds)
    key = features_cache_key(ds, "training", paths, 32)
    assert key == features_cache_key(ds, "training", paths, 32)
    assert key != features_cache_key(ds, "training", paths, 48)
    assert key != features_cache_key(ds, "validation", paths, 32)
    assert key != features_cache_key(ds, "training", paths[:-1], 32)


def test_select_train_keeps_the_first_images_of_each_class(ds):
    paths, labels = select_train(ds, 2)
    assert np.bincount(labels).tolist() == [2] * 10
    all_paths, all_labels = ds.subset("train")
    assert paths[:2] == [p for p, y in zip(all_paths, all_labels) if y == 0][:2]
    assert len(select_train(ds)[0]) == 40


# ----------------------------------------------------------------------------- stops

def test_a_stop_during_feature_extraction_caches_nothing(ds, tmp_path):
    ctx = Ctx(stop_when=lambda reports: any(p.get("phase") == "extract" for p in reports))
    result = run_transfer(config("features"), ds, ctx, cache_dir=tmp_path)
    assert result.stopped and result.evaluation is None and result.history["loss"] == []
    assert list(tmp_path.glob("features-*.npy")) == []


def test_a_stop_during_training_keeps_the_epochs_done_and_judges_the_model(ds, tmp_path):
    ctx = Ctx(stop_when=lambda reports: any(p.get("phase") == "epoch_end" for p in reports))
    result = run_transfer(config("frozen", epochs=50), ds, ctx, cache_dir=tmp_path)
    assert result.stopped and 1 <= len(result.history["loss"]) < 50
    assert result.evaluation is not None and result.model is not None


def test_a_stop_after_the_head_skips_fine_tuning(ds, tmp_path):
    ctx = Ctx(stop_when=lambda reports: sum(p.get("phase") == "epoch_end" for p in reports) >= 2)
    result = run_transfer(config("finetune"), ds, ctx, cache_dir=tmp_path)
    assert result.stopped and len(result.phases) == 1 and len(result.history["loss"]) == 2


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kw, match", [
    (dict(mode="transfer"), "`mode`"),
    (dict(base="vgg19"), "`base`"),
    (dict(image_size=20), "`image_size`"),
    (dict(base="inceptionv3", image_size=64), "at least 75"),
    (dict(head="dense"), "`head`"),
    (dict(dropout=1.0), "`dropout`"),
    (dict(epochs=0), "`epochs`"),
    (dict(batch_size=0), "`batch_size`"),
    (dict(finetune_learning_rate=0), "`finetune_learning_rate`"),
    (dict(max_per_class=0), "`max_per_class`"),
    (dict(optimizer={"name": "adagrad"}), "adagrad"),
])
def test_bad_configurations_are_refused_naming_the_value(ds, kw, match):
    cfg = TransferConfig(**{"mode": "features", "weights": None, **kw})
    with pytest.raises(CvcoreError, match=match):
        run_transfer(cfg, ds)


def test_a_data_set_without_validation_images_is_refused(ds):
    no_val = ds.resplit(fraction=0.0)
    with pytest.raises(CvcoreError, match="no validation images"):
        run_transfer(config("baseline"), no_val)


def test_missing_imagenet_weights_fail_the_run_with_the_way_to_provide_them(ds):
    with pytest.raises(WeightsUnavailableError, match="CVCORE_WEIGHTS_DIR"):
        run_transfer(config("frozen", weights="imagenet"), ds)


def test_ensure_weights_finds_the_operators_file_and_says_how_when_missing(tmp_path, monkeypatch):
    with pytest.raises(WeightsUnavailableError, match="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        applications.ensure_weights("vgg16", include_top=False)
    base = applications.load_application("vgg16", weights=None, include_top=False, input_shape=(32, 32, 3))
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    base.save_weights(str(path).replace(".h5", ".weights.h5"))
    os.rename(str(path).replace(".h5", ".weights.h5"), path)
    monkeypatch.setenv(applications.WEIGHTS_DIR_ENV, str(tmp_path))
    assert applications.ensure_weights("vgg16", include_top=False) == path


# ----------------------------------------------------------------------------- summary and costs

def test_the_summary_shows_the_seeds_counts_and_fine_tuning_counts_from_keras():
    s = transfer_summary("vgg16", 150, 12)
    assert s["base"] == {"total": 14_714_688, "trainable": 0, "non_trainable": 14_714_688}
    assert s["model"] == {"total": 14_813_004, "trainable": 98_316, "non_trainable": 14_714_688}
    assert s["default_finetune_layers"] == 4 and s["base_layers"][-4:] == [
        "block5_conv1", "block5_conv2", "block5_conv3", "block5_pool"]
    model = transfer.build_transfer_model("vgg16", (150, 150, 3), 12, weights=None)
    assert s["finetune"]["trainable"] == transfer.unfreeze(model, 4) == 7_177_740
    assert s["scratch"] == {"total": 14_813_004, "trainable": 14_813_004, "non_trainable": 0}
    assert sum(r["params"] for r in s["rows"]) == 14_813_004
    assert [r["layer"] for r in s["rows"]] == ["imagenet_preprocessing", "vgg16", "flatten", "predictions"]
    assert s["feature_shape"] == (4, 4, 512)
    # VGG16's 13 convolutions (3 x 3, same padding) at 150, 75, 37, 18 and 9 pixels, counted by hand.
    convs = [(150, 3, 64), (150, 64, 64), (75, 64, 128), (75, 128, 128)] + [(37, 128, 256)] + [(37, 256, 256)] * 2 \
        + [(18, 256, 512)] + [(18, 512, 512)] * 2 + [(9, 512, 512)] * 3
    assert s["base_macs"] == sum(side * side * 9 * cin * cout for side, cin, cout in convs) == 6_615_491_328
    assert s["head_macs"] == 8192 * 12
    assert s["top_macs"] == 3 * 9 * 9 * 9 * 512 * 512  # block5


@pytest.mark.parametrize("base", ["resnet50", "mobilenetv2"])
def test_default_fine_tuning_unfreezes_the_top_block(base):
    s = transfer_summary(base, 64, 5, head="gap")
    top = s["base_layers"][-s["default_finetune_layers"]:]
    assert top[0].startswith({"resnet50": "conv5_block3", "mobilenetv2": "block_16"}[base]), top[:3]
    assert s["model"]["trainable"] < s["finetune"]["trainable"] < s["scratch"]["trainable"]


def test_mode_params_are_the_counts_of_the_model_each_mode_trains():
    s = transfer_summary("vgg16", 150, 12)
    p = mode_params(s, 150, 12)
    assert p["baseline"]["trainable"] == logistic_model((150, 150, 3), 12).count_params() == 810_012
    assert p["frozen"] == p["features"] == {"total": 14_813_004, "trainable": 98_316, "non_trainable": 14_714_688}
    assert p["finetune"]["trainable"] == 7_177_740 and p["scratch"]["non_trainable"] == 0


def test_mode_costs_put_cached_features_far_below_the_frozen_model():
    s = transfer_summary("vgg16", 150, 12)
    costs = mode_costs(s, 150, 12, 4000, 144)
    assert costs["features"]["once"] == s["base_macs"] * 4144 and costs["frozen"]["once"] == 0
    assert costs["frozen"]["per_epoch"] > 1000 * costs["features"]["per_epoch"]
    assert costs["scratch"]["per_epoch"] > costs["finetune"]["per_epoch"] > costs["frozen"]["per_epoch"]
    assert costs["baseline"]["per_epoch"] < costs["frozen"]["per_epoch"]


# ----------------------------------------------------------------------------- flat_model

@pytest.mark.parametrize("base, side", [("vgg16", 48), ("resnet50", 48)])
def test_the_flat_model_predicts_as_the_nested_one_with_every_layer_on_top(base, side):
    model = transfer.build_transfer_model(base, (side, side, 3), 3, weights=None, head="gap", dropout=0.2)
    flat = transfer.flat_model(model)
    x = np.random.default_rng(0).uniform(0, 255, (2, side, side, 3)).astype(np.float32)
    np.testing.assert_allclose(flat.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    names = [layer.name for layer in flat.layers]
    assert names[:2] == ["pixels", "imagenet_preprocessing"] and names[-1] == "predictions"
    assert flat.count_params() == model.count_params()
    last = inputs.last_conv_layer(flat)
    assert last == {"vgg16": "block5_conv3", "resnet50": "conv5_block3_3_conv"}[base]
    cam_model = inputs.submodel(flat, [last, "predictions"])  # what Grad-CAM builds
    conv, proba = cam_model(x)
    assert tuple(conv.shape)[1:3] == (3, 3) if base == "vgg16" else (2, 2)
    assert inputs.preprocessing_of(flat) == "raw"


# ----------------------------------------------------------------------------- pipeline

def test_load_resized_shrinks_and_enlarges_to_a_square(folder, tmp_path):
    path = next(folder.glob("*/*.png"))
    for side in (16, 64):
        img = pipeline.load_resized(path, side)
        assert img.shape == (side, side, 3) and img.dtype == np.uint8
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(InvalidImageError):
        pipeline.load_resized(bad, 32)
    with pytest.raises(CvcoreError, match="`side`"):
        pipeline.load_resized(path, 8)


def test_load_images_reads_in_order_reports_and_stops(ds):
    paths, _ = ds.subset("validation")
    seen = []
    batch = pipeline.load_images(paths, 24, on_progress=lambda d, t: seen.append((d, t)))
    assert batch.shape == (20, 24, 24, 3) and seen[-1] == (20, 20)
    np.testing.assert_array_equal(batch[3], pipeline.load_resized(paths[3], 24))
    assert pipeline.load_images(paths, 24, should_stop=lambda: True) is None


def test_load_images_names_a_file_that_changed_since_the_scan(tmp_path):
    bad = tmp_path / "gone.png"
    bad.write_text("no longer an image")
    with pytest.raises(InvalidImageError, match="gone.png.*scan it again"):
        pipeline.load_images([bad], 24)


def test_image_dataset_batches_raw_pixels_in_the_files_order(ds):
    paths, labels = ds.subset("train")
    data = pipeline.image_dataset(paths, labels, 32, batch_size=16)
    assert int(data.cardinality()) == 3
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in data])
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.dtype == np.float32 and x.shape == (40, 32, 32, 3) and 0 <= x.min() and x.max() <= 255
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_array_equal(x[5], pipeline.load_resized(paths[5], 32).astype(np.float32))
    shuffled = np.concatenate([y.numpy() for _, y in pipeline.image_dataset(paths, labels, 32, shuffle=True, seed=1)])
    assert sorted(shuffled.tolist()) == sorted(labels.tolist()) and shuffled.tolist() != labels.tolist()


def test_image_dataset_applies_augmentation_in_training_mode(ds):
    paths, labels = ds.subset("train")
    calls = []

    def augment(x, training=False):
        calls.append(training)
        return x * 0.0

    x, _ = next(iter(pipeline.image_dataset(paths, labels, 32, batch_size=8, augment=augment)))
    assert calls == [True] and float(np.abs(x.numpy()).max()) == 0.0


@pytest.mark.parametrize("kw, match", [
    (dict(paths=[]), "no image files"),
    (dict(labels=[0]), "one class index per file"),
    (dict(batch_size=0), "`batch_size`"),
    (dict(augment="flip"), "`augment`"),
])
def test_image_dataset_refuses_bad_arguments(ds, kw, match):
    paths, labels = ds.subset("train")
    args = {"paths": paths, "labels": labels, **kw}
    with pytest.raises(CvcoreError, match=match):
        pipeline.image_dataset(args.pop("paths"), args.pop("labels"), 32, **args)

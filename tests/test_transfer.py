"""cvcore.transfer: transfer models (the seed's counts, preprocessing inside, safe-mode saving), cached feature
extraction (never stale), and fine-tuning counts checked against Keras."""
import numpy as np
import pytest

from cvcore import applications, transfer
from cvcore.errors import CvcoreError, ShapeError, WeightsUnavailableError
from cvcore import model_inputs as inputs

keras = pytest.importorskip("keras")


pytestmark = pytest.mark.usefixtures("offline_weights")  # tests/conftest.py: nothing downloads


def trainable_count(model):
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


@pytest.fixture(scope="module")
def seed_vgg():
    return transfer.build_transfer_model("vgg16", (150, 150, 3), 12, weights=None)


def small_vgg_base():
    return applications.load_application("vgg16", weights=None, include_top=False, input_shape=(32, 32, 3))


def images(n, seed=0, size=32):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- build_transfer_model

def test_the_seeds_vgg16_counts_hold(seed_vgg):
    assert [layer.name for layer in seed_vgg.layers] == ["pixels", "imagenet_preprocessing", "vgg16", "flatten",
                                                         "predictions"]
    assert transfer.base_of(seed_vgg).count_params() == 14_714_688
    assert seed_vgg.count_params() == 14_813_004
    assert trainable_count(seed_vgg) == 98_316
    assert inputs.preprocessing_of(seed_vgg) == "raw"
    assert seed_vgg.get_layer("imagenet_preprocessing").weights == []


@pytest.mark.parametrize("base, kind", [("vgg16", "caffe"), ("mobilenetv2", "tf")])
def test_the_preprocessing_layer_matches_the_bases_own(base, kind):
    model = transfer.build_transfer_model(base, (32, 32, 3), 3, weights=None)
    x = images(2).astype(np.float32)
    got = keras.ops.convert_to_numpy(model.get_layer("imagenet_preprocessing")(x))
    np.testing.assert_allclose(got, inputs.to_model_pixels(x / 255.0, kind), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("base, head, dropout", [("vgg16", "flatten", 0.0), ("mobilenetv2", "gap", 0.3)])
def test_saves_and_loads_in_safe_mode_with_the_same_outputs(tmp_path, base, head, dropout):
    model = transfer.build_transfer_model(base, (32, 32, 3), 4, weights=None, head=head, dropout=dropout)
    assert ("dropout" in [layer.name for layer in model.layers]) == (dropout > 0)
    x = images(3).astype(np.float32)
    expected = model.predict_on_batch(x)
    path = tmp_path / "transfer.keras"
    model.save(path)
    transfer.custom_objects()  # registers the layer (building a model did too)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict_on_batch(x), expected, rtol=1e-5, atol=1e-6)
    assert inputs.preprocessing_of(loaded) == "raw"  # no tag after loading: inferred from the first layer
    assert transfer.base_of(loaded).name == transfer.base_of(model).name
    assert trainable_count(loaded) == trainable_count(model)


def test_missing_imagenet_weights_raise_weights_unavailable():
    with pytest.raises(WeightsUnavailableError, match="CVCORE_WEIGHTS_DIR"):
        transfer.build_transfer_model("mobilenetv2", (96, 96, 3), 3)


@pytest.mark.parametrize("kwargs, name", [
    (dict(base="alexnet"), "base"), (dict(input_shape=(150, 150)), "input_shape"),
    (dict(input_shape=(16, 16, 3)), "input_shape"), (dict(num_classes=1), "num_classes"),
    (dict(head="dense"), "head"), (dict(dropout=1.0), "dropout"),
])
def test_bad_arguments_are_named(kwargs, name):
    args = {**dict(base="vgg16", input_shape=(32, 32, 3), num_classes=3, weights=None), **kwargs}
    with pytest.raises(CvcoreError, match=f"`{name}`"):
        transfer.build_transfer_model(args.pop("base"), args.pop("input_shape"), args.pop("num_classes"), **args)


# ----------------------------------------------------------------------------- unfreeze

def test_unfreeze_vgg16_counts_agree_with_keras(seed_vgg):
    assert transfer.unfreeze(seed_vgg, 4) == 98_316 + 7_079_424 == trainable_count(seed_vgg)
    trainable = [layer.name for layer in transfer.base_of(seed_vgg).layers if layer.trainable]
    assert trainable == ["block5_conv1", "block5_conv2", "block5_conv3", "block5_pool"]
    assert transfer.unfreeze(seed_vgg, 0) == 98_316 == trainable_count(seed_vgg)
    for bad in (-1, 20, 2.5, True):
        with pytest.raises(CvcoreError, match="`n_layers`.*received"):
            transfer.unfreeze(seed_vgg, bad)


def test_unfreeze_keeps_batch_normalization_frozen():
    model = transfer.build_transfer_model("mobilenetv2", (32, 32, 3), 3, weights=None, head="gap")
    base = transfer.base_of(model)
    n = len([layer for layer in base.layers if type(layer).__name__ != "InputLayer"])
    count = transfer.unfreeze(model, n)
    assert count == trainable_count(model)
    bns = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and not any(layer.trainable for layer in bns)
    bn_ids = {id(w) for layer in bns for w in layer.weights}
    assert not any(id(w) in bn_ids for w in model.trainable_weights)
    non_bn = sum(int(np.prod(w.shape)) for layer in base.layers if not isinstance(layer, keras.layers.BatchNormalization)
                 for w in layer.weights)
    head = trainable_count(model) - non_bn
    assert head == 1280 * 3 + 3
    assert transfer.unfreeze(model, 0) == 1280 * 3 + 3


def test_unfreeze_refuses_a_model_without_a_base():
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(CvcoreError, match="`model`"):
        transfer.unfreeze(plain, 1)


# ----------------------------------------------------------------------------- extract_features

def test_features_are_the_bases_output_and_progress_is_reported():
    base = small_vgg_base()
    x = images(5)
    seen = []
    features = transfer.extract_features(base, x, batch_size=2, on_progress=lambda d, t: seen.append((d, t)))
    assert features.dtype == np.float32 and features.shape == (5, 1, 1, 512)
    expected = base.predict_on_batch(inputs.to_model_pixels(x / 255.0, "caffe"))
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_a_transfer_models_head_on_features_gives_its_predictions():
    model = transfer.build_transfer_model("vgg16", (32, 32, 3), 3, weights=None)
    x = images(4)
    features = transfer.extract_features(transfer.base_of(model), x)  # base_of(model) is tagged "caffe" by its loader
    head = keras.Sequential([model.get_layer("flatten"), model.get_layer("predictions")])
    np.testing.assert_allclose(head.predict_on_batch(features), model.predict_on_batch(x.astype(np.float32)),
                               rtol=1e-4, atol=1e-6)


def test_a_dataset_of_pairs_uses_only_the_images(tmp_path):
    import tensorflow as tf

    base = small_vgg_base()
    x, y = images(5), np.arange(5)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    seen = []
    features = transfer.extract_features(base, ds, on_progress=lambda d, t: seen.append((d, t)))
    np.testing.assert_allclose(features, transfer.extract_features(base, x), rtol=1e-5, atol=1e-5)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(CvcoreError, match="`cache_key`"):
        transfer.extract_features(base, ds, cache_dir=tmp_path)
    unknown = ds.filter(lambda a, b: True)
    seen.clear()
    transfer.extract_features(base, unknown, on_progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (3, None)


def count_calls(monkeypatch, model):
    calls = []
    real = model.predict_on_batch

    def counting(x):
        calls.append(len(x))
        return real(x)

    monkeypatch.setattr(model, "predict_on_batch", counting)
    return calls


def test_the_cache_is_read_and_never_stale(tmp_path, monkeypatch):
    base = small_vgg_base()
    calls = count_calls(monkeypatch, base)
    x = images(4)
    first = transfer.extract_features(base, x, cache_dir=tmp_path, batch_size=2)
    assert len(calls) == 2 and len(list(tmp_path.glob("*.npy"))) == 1
    second = transfer.extract_features(base, x, cache_dir=tmp_path, batch_size=2)
    assert len(calls) == 2  # read from the cache: the base did not run
    np.testing.assert_array_equal(first, second)

    changed = x.copy()
    changed[0, 0, 0, 0] ^= 1
    third = transfer.extract_features(base, changed, cache_dir=tmp_path, batch_size=2)
    assert len(calls) == 4  # other images: computed again

    kernel = base.get_layer("block1_conv1").kernel
    kernel.assign(kernel.numpy() * 2.0)
    fourth = transfer.extract_features(base, x, cache_dir=tmp_path, batch_size=2)
    assert len(calls) == 6  # other weights: computed again, never the stale features
    fresh = base.predict_on_batch(inputs.to_model_pixels(x / 255.0, "caffe"))
    np.testing.assert_allclose(fourth, fresh, rtol=1e-5, atol=1e-5)
    assert not np.allclose(fourth, first)
    assert third.shape == first.shape
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".npy"] * 3  # no temp files left behind


def test_a_dataset_is_cached_under_its_key(tmp_path, monkeypatch):
    import tensorflow as tf

    base = small_vgg_base()
    calls = count_calls(monkeypatch, base)
    ds = tf.data.Dataset.from_tensor_slices(images(3)).batch(2)
    a = transfer.extract_features(base, ds, cache_dir=tmp_path, cache_key="files-v1")
    b = transfer.extract_features(base, ds, cache_dir=tmp_path, cache_key="files-v1")
    assert len(calls) == 2
    np.testing.assert_array_equal(a, b)
    transfer.extract_features(base, ds, cache_dir=tmp_path, cache_key="files-v2")
    assert len(calls) == 4


@pytest.mark.parametrize("kwargs, name", [
    (dict(images=np.zeros((2, 32, 32))), "`images`"), (dict(batch_size=0), "`batch_size`"),
    (dict(on_progress=3), "`on_progress`"), (dict(cache_key=5), "`cache_key`"), (dict(images="x"), "`images`"),
])
def test_extract_features_names_bad_arguments(kwargs, name):
    base = small_vgg_base()
    args = dict(images=images(2), **{k: v for k, v in kwargs.items() if k != "images"})
    if "images" in kwargs:
        args["images"] = kwargs["images"]
    with pytest.raises((CvcoreError, ShapeError), match=name):
        transfer.extract_features(base, args.pop("images"), **args)

"""ImageNet models and the visualizations' input plumbing: weights from a file, Keras' cache or a refusal;
class names shipped with the app; images turned into each model's input; top predictions."""
import numpy as np
import pytest

from cvcore import applications
from cvcore.errors import CvcoreError, ShapeError, WeightsUnavailableError
from cvcore import model_inputs as inputs
from cvcore.visualize import top_predictions

keras = pytest.importorskip("keras")


pytestmark = pytest.mark.usefixtures("offline_weights")  # tests/conftest.py: nothing downloads


def save_like_keras_applications(model, path):
    """Weights in the legacy HDF5 layout of Keras' published ImageNet files (``*_tf_kernels.h5``)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.fixture(scope="module")
def mobilenet():
    return applications.load_application("mobilenetv2", weights=None)


def test_parameter_counts_agree_with_keras_and_the_seed():
    vgg = applications.load_application("vgg16", weights=None, include_top=False, input_shape=(150, 150, 3))
    assert vgg.count_params() == 14_714_688  # the seed's VGG16 without top at 150x150
    assert inputs.preprocessing_of(vgg) == "caffe"


def test_missing_imagenet_weights_say_how_to_provide_them():
    with pytest.raises(WeightsUnavailableError) as err:
        applications.load_application("mobilenetv2")
    message = str(err.value)
    assert "Name or service not known" in message and "CVCORE_WEIGHTS_DIR" in message
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in message
    assert isinstance(err.value, ValueError)


def test_weights_come_from_the_operators_folder(mobilenet, tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    save_like_keras_applications(mobilenet, folder / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5")
    monkeypatch.setenv(applications.WEIGHTS_DIR_ENV, str(folder))
    assert applications.weights_file("mobilenetv2") is not None
    loaded = applications.load_application("mobilenetv2")
    for a, b in zip(loaded.weights[:3], mobilenet.weights[:3]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert inputs.preprocessing_of(loaded) == "tf"


def test_a_weights_file_that_does_not_fit_is_refused(tmp_path):
    small = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
    path = tmp_path / "other.h5"
    save_like_keras_applications(small, path)
    with pytest.raises(WeightsUnavailableError, match="does not fit MobileNetV2"):
        applications.load_application("mobilenetv2", weights=path)
    with pytest.raises(WeightsUnavailableError, match="no file at"):
        applications.load_application("mobilenetv2", weights=tmp_path / "missing.h5")


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="alexnet"), "Unknown model"),
    (dict(name="vgg16", weights="imagenet21k"), "`weights`"),
    (dict(name="vgg16", input_shape=(150, 150, 3)), "only be set without the top"),
    (dict(name="vgg16", include_top=False, input_shape=(150, 150)), "input_shape"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(CvcoreError, match=match):
        applications.load_application(**kwargs)


def test_imagenet_class_names_ship_with_the_app():
    names = applications.imagenet_class_names()
    assert len(names) == 1000 and names[184] == "Irish terrier" and names[0] == "tench"


# ============================================================================ the input plumbing


@pytest.fixture(scope="module")
def digits_model():
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
                             keras.layers.MaxPooling2D(name="p1"), keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="softmax", name="out")])


def test_any_image_becomes_the_models_input(digits_model, mobilenet):
    photo = np.random.default_rng(0).integers(0, 256, (100, 80, 3), dtype=np.uint8)
    x = inputs.model_input(digits_model, photo)
    assert x.shape == (1, 28, 28, 1) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    gray = inputs.model_input(mobilenet, np.full((50, 50), 255, np.uint8))
    assert gray.shape == (1, 224, 224, 3) and np.allclose(gray, 1.0)  # [0, 255] -> [-1, 1] for MobileNetV2
    same = inputs.model_input(digits_model, np.full((28, 28), 0.5, np.float32))
    assert np.allclose(same, 0.5)  # float in [0, 1] taken as it is


def test_caffe_preprocessing_equals_keras(mobilenet):
    from keras.applications import vgg16

    img = np.random.default_rng(1).integers(0, 256, (224, 224, 3)).astype(np.float32)
    vgg = keras.Sequential([keras.Input((224, 224, 3)), keras.layers.Conv2D(1, 3)], name="vgg16_like")
    inputs.set_preprocessing(vgg, "caffe")
    ours = inputs.model_input(vgg, img.astype(np.uint8))
    np.testing.assert_allclose(ours[0], vgg16.preprocess_input(img.copy()), atol=1e-3)
    from keras.applications import mobilenet_v2

    np.testing.assert_allclose(inputs.model_input(mobilenet, img.astype(np.uint8))[0],
                               mobilenet_v2.preprocess_input(img.copy()), atol=1e-5)


def test_preprocessing_is_inferred_and_inverts():
    rescaling = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(1, 3)])
    assert inputs.preprocessing_of(rescaling) == "raw"
    x = np.random.default_rng(2).random((2, 4, 4, 3)).astype(np.float32)
    for kind in inputs.PREPROCESSING:
        np.testing.assert_allclose(inputs.from_model_pixels(inputs.to_model_pixels(x, kind), kind), x, atol=1e-5)
    with pytest.raises(CvcoreError, match="kind"):
        inputs.set_preprocessing(rescaling, "imagenet")


def test_submodels_share_weights_and_are_cached(digits_model):
    sub = inputs.submodel(digits_model, ["c1", "out"])
    assert sub is inputs.submodel(digits_model, ["c1", "out"])
    x = np.random.default_rng(3).random((1, 28, 28, 1)).astype(np.float32)
    conv, out = sub(x)
    np.testing.assert_allclose(np.asarray(out), np.asarray(digits_model(x)), atol=1e-6)
    functional = inputs.as_functional(digits_model)
    assert functional.output_names == ["out"]  # what tf-keras-vis needs, and Keras 3 Sequential models lack
    assert inputs.last_conv_layer(digits_model) == "c1"
    assert inputs.conv_layer_names(digits_model) == ["c1", "p1"]
    with pytest.raises(CvcoreError, match="No layer named 'nope'"):
        inputs.submodel(digits_model, ["nope"])


def test_bad_images_are_named(digits_model):
    with pytest.raises(ShapeError, match="H x W"):
        inputs.model_input(digits_model, np.zeros((2, 28, 28, 1)))
    with pytest.raises(ShapeError, match="NaN"):
        inputs.model_input(digits_model, np.full((28, 28), np.nan, np.float32))


def test_top_predictions(digits_model):
    top = top_predictions(digits_model, np.zeros((28, 28), np.uint8), k=3, class_names=[str(i) for i in range(10)])
    assert len(top) == 3 and top[0][2] >= top[1][2] >= top[2][2]
    assert all(isinstance(i, int) and name == str(i) for i, name, _ in top)
    with pytest.raises(CvcoreError, match="class_names"):
        top_predictions(digits_model, np.zeros((28, 28), np.uint8), class_names=["a"])
    with pytest.raises(CvcoreError, match="`k`"):
        top_predictions(digits_model, np.zeros((28, 28), np.uint8), k=0)

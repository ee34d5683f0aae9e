"""face-api.js's expression net, rebuilt as an ONNX graph from the TF.js weights copied from its npm package."""

import json

import numpy as np
import pytest

from omniemo.perception import faceapi_net
from omniemo.perception.expression import CLASSES, FaceApi

# What the TF.js original answers (tfjs-core 4, CPU backend, the package's weights and its FaceExpressionNet
# forward pass) for the two fixed 112 x 112 RGB inputs of ``_inputs``, in LABELS order.
TFJS_PROBABILITIES = np.array([
    [0.406182, 0.083472, 0.406371, 0.067574, 0.003814, 0.007901, 0.024687],
    [0.126361, 0.172588, 0.604830, 0.034966, 0.026749, 0.017185, 0.017321],
])


def _inputs() -> np.ndarray:
    noise = np.random.default_rng(7).integers(0, 256, (112, 112, 3))
    yy, xx = np.mgrid[0:112, 0:112]
    ramp = np.stack([(xx * 2) % 256, (yy * 2) % 256, (xx + yy) % 256], -1)
    return np.stack([noise, ramp]).astype(np.float32)


def test_the_rebuilt_graph_answers_as_the_tfjs_original():
    model = FaceApi()
    x = ((_inputs() - np.array(faceapi_net.MEAN_RGB, np.float32)) / 255.0).transpose(0, 3, 1, 2)
    logits = model.session.run(None, {faceapi_net.INPUT: x.astype(np.float32)})[0]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert np.abs(p - TFJS_PROBABILITIES).max() < 1e-5


def test_a_grey_crop_of_any_size_gives_probabilities_over_our_classes():
    model = FaceApi()
    for size in (48, 200):
        crop = np.random.default_rng(size).integers(0, 256, (size, size)).astype(np.uint8)
        p = model(crop)
        assert p.shape == (len(CLASSES),) and np.isclose(p.sum(), 1.0) and (p > 0).all()
    # its own label order is mapped by name: the network's "disgusted" is our disgust
    logits = np.log(TFJS_PROBABILITIES[1])
    model.session = type("Fixed", (), {"run": lambda self, out, feed: [logits[None]]})()
    assert model(np.zeros((200, 200), np.uint8))[CLASSES.index("sad")] == pytest.approx(0.604830, abs=1e-6)
    assert model(np.zeros((200, 200), np.uint8))[CLASSES.index("disgust")] == pytest.approx(0.017185, abs=1e-6)


def test_tfjs_weights_decode_quantised_and_float_tensors_and_refuse_a_short_file():
    manifest = [{"paths": ["w.bin"], "weights": [
        {"name": "a", "shape": [2, 2], "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
        {"name": "b", "shape": [3], "dtype": "float32"}]}]
    raw = bytes([0, 2, 4, 255]) + np.array([1.5, -2.0, 0.25], np.float32).tobytes()
    weights = faceapi_net.decode_weights(manifest, raw)
    assert weights["a"].tolist() == [[-1.0, 0.0], [1.0, 126.5]]
    assert weights["b"].tolist() == [1.5, -2.0, 0.25]
    with pytest.raises(ValueError, match="holds 15 bytes, the manifest describes 16"):
        faceapi_net.decode_weights(manifest, raw[:-1])
    manifest[0]["weights"][0]["quantization"]["dtype"] = "uint16"
    with pytest.raises(ValueError, match="uint16 quantisation"):
        faceapi_net.decode_weights(manifest, raw)


def test_the_shipped_files_are_the_npm_package_s_and_say_their_licence():
    from importlib import resources

    folder = resources.files("omniemo.perception").joinpath("weights")
    assert "MIT License" in folder.joinpath("FACEAPI_LICENSE").read_text()
    manifest = json.loads(folder.joinpath(faceapi_net.MANIFEST).read_text())
    names = [w["name"] for w in manifest[0]["weights"]]
    assert names[0] == "dense0/conv0/filters" and names[-1] == "fc/bias" and len(names) == 49
    assert set(faceapi_net.shipped_weights()) == set(names)  # the SHA-256 check passes


def test_the_shipped_face_model_names_every_outside_model_that_reads_and_its_weight():
    from omniemo.perception.expression import EXPERTS, ExpressionModel

    model = ExpressionModel()
    used = {name: weight for name, weight in model.weights.items() if weight}
    assert set(model.experts) == set(used)
    for name, weight in used.items():
        assert f"{EXPERTS[name].name} weighing {weight:g}" in model.name
    assert f"{model.floor:g} uniform floor" in model.name

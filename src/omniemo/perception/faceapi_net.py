"""face-api.js's expression classifier (FaceExpressionNet, MIT), rebuilt as an ONNX graph from its TF.js weights.

The weights are the two files of ``model/face_expression_model*`` in the npm package ``@vladmandic/face-api``
1.7.15 (Vladimir Mandic's maintained build of Vincent Mühler's face-api.js; both MIT), copied unchanged into
``omniemo/perception/weights/`` with its licence (``FACEAPI_LICENSE``), since no PyPI wheel carries them:
``npm pack @vladmandic/face-api@1.7.15`` gives them again (``FACEAPI_SHA256`` checks them). Its authors say it was
trained on images from public datasets and from the web; which ones is not published.

The network: 112 x 112 RGB minus a mean colour, /255; four densely connected blocks (the first a plain 3 x 3
convolution, the rest depthwise separable; each halves the size; inside a block every convolution reads the sum
of the ones before it), a 7 x 7 average pool, one fully connected layer to 7 classes. TF.js stores each weight
as 8 bits with a scale and minimum, dequantised here. Built in memory at load (milliseconds); answers as the
TF.js original does (a test holds its figures for fixed inputs).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import numpy as np

INPUT, OUTPUT = "faces", "logits"
SIZE = 112
MEAN_RGB = (122.782, 117.001, 104.298)
# its output order (its own words: fearful, disgusted, surprised), named as omniemo names the classes
LABELS = ("neutral", "happy", "sad", "angry", "fear", "disgust", "surprise")
MANIFEST = "faceapi_expression_model-weights_manifest.json"
WEIGHTS = "faceapi_expression_model.bin"
FACEAPI_SHA256 = {MANIFEST: "5b349c17c7836da506e03422cd6461c74085d8bb2713ad4114647dc5d28174c8",
                  WEIGHTS: "9a9840f2cf1f4c7eab95f197512569345c00d2426754d4608b92af30e0300f3d"}


def shipped_weights() -> dict[str, np.ndarray]:
    """The network's weights by their TF.js names (``dense0/conv1/depthwise_filter``: HWC1, ...), dequantised."""
    from omniemo.perception.models import ModelUnavailableError

    folder = resources.files("omniemo.perception").joinpath("weights")
    blobs = {}
    for name, digest in FACEAPI_SHA256.items():
        path = folder.joinpath(name)
        if not path.is_file():
            raise ModelUnavailableError(f"{path} is missing: reinstall omniemo")
        blobs[name] = path.read_bytes()
        if hashlib.sha256(blobs[name]).hexdigest() != digest:
            raise ModelUnavailableError(f"{path} is not the file of @vladmandic/face-api 1.7.15 (its SHA-256 differs)")
    return decode_weights(json.loads(blobs[MANIFEST]), blobs[WEIGHTS])


def decode_weights(manifest: list[dict], raw: bytes) -> dict[str, np.ndarray]:
    """TF.js weights: one binary of the manifest's tensors in order, each float32 or uint8 ``q * scale + min``."""
    specs = [w for group in manifest for w in group["weights"]]
    for spec in specs:
        if spec.get("quantization", {"dtype": "uint8"})["dtype"] != "uint8":
            raise ValueError(f"{spec['name']}: {spec['quantization']['dtype']} quantisation is not supported")
    size = sum(int(np.prod(w["shape"])) * (1 if w.get("quantization") else 4) for w in specs)
    if size != len(raw):
        raise ValueError(f"the weights file holds {len(raw)} bytes, the manifest describes {size}")
    weights, offset = {}, 0
    for spec in specs:
        count, quantised = int(np.prod(spec["shape"])), spec.get("quantization")
        if quantised:
            codes = np.frombuffer(raw, np.uint8, count, offset).astype(np.float32)
            values = codes * quantised["scale"] + quantised["min"]
            offset += count
        else:
            values = np.frombuffer(raw, np.float32, count, offset).copy()
            offset += 4 * count
        weights[spec["name"]] = values.reshape(spec["shape"]).astype(np.float32)
    return weights


def expression_onnx(weights: dict[str, np.ndarray]):
    """The network as an ``onnx.ModelProto``: input ``faces`` (N, 3, 112, 112) normalised, output ``logits``
    (N, 7) in ``LABELS`` order."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, initialisers = [], []

    def constant(name, array):
        initialisers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def conv(x, name, kernel, bias, stride, group=1):
        # TensorFlow's "same" padding: with stride 2 on an even size the one extra pixel goes after
        pads = [0, 0, 1, 1] if stride == 2 else [1, 1, 1, 1]
        if kernel.shape[:2] == (1, 1):
            pads = [0, 0, 0, 0]
        # TF.js kernels are H W in out (depthwise: H W channels 1); ONNX wants out in H W
        onnx_kernel = kernel.transpose(3, 2, 0, 1) if group == 1 else kernel.transpose(2, 3, 0, 1)
        inputs = [x, constant(name + "/w", onnx_kernel)]
        if bias is not None:
            inputs.append(constant(name + "/b", bias))
        nodes.append(helper.make_node("Conv", inputs, [name], strides=[stride, stride], pads=pads, group=group))
        return name

    def separable(x, name, stride):
        depthwise = weights[name + "/depthwise_filter"]  # H W C 1
        x = conv(x, name + "/dw", depthwise, None, stride, group=depthwise.shape[2])
        return conv(x, name + "/pw", weights[name + "/pointwise_filter"], weights[name + "/bias"], 1)

    def op(kind, inputs, name):
        nodes.append(helper.make_node(kind, inputs, [name]))
        return name

    x = INPUT
    for b in range(4):
        p = f"dense{b}"
        first = conv(x, p + "/conv0", weights[p + "/conv0/filters"], weights[p + "/conv0/bias"], 2) if b == 0 \
            else separable(x, p + "/conv0", 2)
        parts = [op("Relu", [first], p + "/out1")]
        for i in (1, 2, 3):
            source = parts[0] if i == 1 else op("Relu", [_sum(parts, p + f"/in{i}", op)], p + f"/in{i}/relu")
            parts.append(separable(source, p + f"/conv{i}", 1))
        x = op("Relu", [_sum(parts, p + "/sum", op)], p + "/out")
    nodes.append(helper.make_node("AveragePool", [x], ["pooled"], kernel_shape=[7, 7], strides=[2, 2]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], axis=1))
    fully_connected = ["features", constant("fc/w", weights["fc/weights"]), constant("fc/b", weights["fc/bias"])]
    nodes.append(helper.make_node("Gemm", fully_connected, [OUTPUT]))
    graph = helper.make_graph(nodes, "faceapi_expression",
                              [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["n", 3, SIZE, SIZE])],
                              [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n", len(LABELS)])],
                              initialisers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _sum(parts: list[str], name: str, op) -> str:
    """The running sum of a dense block's outputs so far, as one chain of Add nodes."""
    total = parts[0]
    for i, part in enumerate(parts[1:], 1):
        total = op("Add", [total, part], f"{name}/{i}")
    return total


def prepare(grey_crop: np.ndarray) -> np.ndarray:
    """A grey face crop of any size -> the network's input (1, 3, 112, 112): resized, replicated to RGB,
    centred on the training mean colour and divided by 255."""
    import cv2

    x = cv2.resize(grey_crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)  # 0.3 UAR over linear
    rgb = np.stack([x - m for m in MEAN_RGB]) / 255.0
    return rgb[None].astype(np.float32)

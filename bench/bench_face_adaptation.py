"""Reading a face set against its own mean expression (``--adapt``, ``--adapt-corpus``): on faces of a set the
nets never saw, and at home.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_face_adaptation.py --raf-only DIR --fer-only DIR
        [--cache ~/.cache/omniemo/face-crops.npz]

``--raf-only`` / ``--fer-only``: out-dirs of face recipe runs trained on one set alone (the README's
``--held-out-run`` commands). Each such net, at its home temperature, in the shipped product's form (the outside
models at the shipped weights and floor; each left out on the set it was trained on, ``EXPERT_HOME``), reads
the set it never saw: UAR as it is, and with each class's log-probability centred on its mean over the set
(``expression.FaceProfile``), over the whole set, over the mean of 20 / 50 / 200 random faces of it, and over
sets where one emotion makes half the faces (each emotion in turn, 10 draws, the mean taken from 100 of their
faces). The shipped model reads its own validation faces the same ways (the cost at home). Results:
bench/out/face_adaptation.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from omniemo import files
from omniemo.perception.expression import EXPERTS, ExpressionModel, face_profile, log_softmax, product_of_experts
from omniemo.train.face_expression import (
    EXPERT_HOME,
    FaceExpressionConfig,
    expert_crops,
    face_images,
    fit_temperature,
    prepare_crops,
    recall_table,
    validation_sets,
)

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def uar(logp: np.ndarray, truth: np.ndarray) -> float:
    return recall_table(truth, logp.argmax(1))["uar"]


def adapted(logp: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``logp`` read against the profile made from the faces ``reference`` (log-probabilities)."""
    profile = face_profile(list(reference))
    return np.log(profile.apply(np.exp(logp)))


def readings(logp: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> dict:
    out = {"as read": uar(logp, truth), "centred on the whole set": uar(adapted(logp, logp), truth)}
    for n in (20, 50, 200):  # the profile from n random faces; every face of the set read against it
        out[f"centred on {n} faces"] = float(np.mean([uar(adapted(logp, logp[rng.choice(len(truth), n, replace=False)]),
                                                          truth) for _ in range(10)]))
    skewed = {"as read": [], "centred": []}
    for k in np.unique(truth):  # one emotion makes half the set
        major, minor = np.flatnonzero(truth == k), np.flatnonzero(truth != k)
        for _ in range(10):
            half = min(len(major), 150)
            rows = np.r_[rng.choice(major, half, replace=False), rng.choice(minor, half, replace=False)]
            skewed["as read"].append(uar(logp[rows], truth[rows]))
            skewed["centred"].append(uar(adapted(logp[rows], logp[rng.choice(rows, min(100, len(rows)), replace=False)]), truth[rows]))
    out.update({f"one emotion half the set: {k}": float(np.mean(v)) for k, v in skewed.items()})
    return {k: round(v, 1) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "omniemo" / "face-crops.npz")
    parser.add_argument("--raf-only", type=Path, required=True, help="out-dir of a face recipe run on RAF-DB alone")
    parser.add_argument("--fer-only", type=Path, required=True, help="out-dir of a face recipe run on FER2013 alone")
    args = parser.parse_args()
    config = FaceExpressionConfig(fer2013_root=DATA / "fer2013", rafdb_root=DATA / "rafdb-basic", cache=args.cache)
    rows = [r for r in face_images(config) if r["split"] == "validation"]
    crops, _ = prepare_crops(rows, config)
    y = np.array([ExpressionModel.classes.index(r["label"]) for r in rows])
    sets = validation_sets(rows)
    wide = expert_crops(rows, sets, config)
    experts = {name: {s: np.array([model(c) for c in wide[s]]) for s in sets} for name, model in
               ((name, cls()) for name, cls in EXPERTS.items())}
    shipped = ExpressionModel()
    rng = np.random.default_rng(0)
    out = {}
    for run, own, other in ((args.raf_only, "rafdb", "fer2013"), (args.fer_only, "fer2013", "rafdb")):
        net = ExpressionModel.from_dir(run)
        temperature = fit_temperature(net.logits(crops[sets[own]]), y[sets[own]])
        weights = {n: 0.0 if EXPERT_HOME.get(n) == other else w for n, w in shipped.weights.items()}
        logp = product_of_experts(log_softmax(net.logits(crops[sets[other]]) / temperature),
                                  {n: experts[n][other] for n in EXPERTS}, weights, shipped.floor)
        out[f"{own} net, never saw {other}"] = readings(logp, y[sets[other]], rng)
        print(f"{own} net, never saw {other}:", out[f"{own} net, never saw {other}"], flush=True)
    for s, idx in sets.items():
        logp = product_of_experts(log_softmax(shipped.logits(crops[idx]) / shipped.temperature),
                                  {n: experts[n][s] for n in EXPERTS}, shipped.weights, shipped.floor)
        out[f"shipped model at home, {s}"] = readings(logp, y[idx], rng)
        print(f"shipped model at home, {s}:", out[f"shipped model at home, {s}"], flush=True)
    files.write_text(HERE / "out" / "face_adaptation.json", json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

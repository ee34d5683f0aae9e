"""Reading a face set against its own mean expression (``--adapt``, ``--adapt-corpus``): on faces of a set the
nets never saw, and at home.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_face_adaptation.py --raf-only DIR --fer-only DIR
        [--cache ~/.cache/omniemo/face-crops.npz] [--batch-norm]

``--raf-only`` / ``--fer-only``: out-dirs of face recipe runs trained on one set alone (the README's
``--held-out-run`` commands). Each such net, at its home temperature, in the shipped product's form (the outside
models at the shipped weights and floor; each left out on the set it was trained on, ``EXPERT_HOME``), reads
the set it never saw: UAR as it is, and with each class's log-probability centred on its mean over the set
(``expression.FaceProfile``), over the whole set, over the mean of 20 / 50 / 200 random faces of it, and over
sets where one emotion makes half the faces (each emotion in turn, 10 draws, the mean taken from 100 of their
faces). The shipped model reads its own validation faces the same ways (the cost at home). ``--batch-norm``
(an experiment, not in the pipeline): also each one-set net with the input of every BatchNorm re-standardised
from the statistics of the set it reads to those of its own validation faces, layer by layer (AdaBN, with the
folded BatchNorms of the exported net rebuilt in torch), from the whole set and from 20 / 100 random faces of it,
then read as it is and centred. Results: bench/out/face_adaptation.json.
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
    WEIGHTS,
    FaceExpressionConfig,
    expert_crops,
    face_images,
    fit_temperature,
    net_from_onnx,
    predict_logits,
    prepare_crops,
    recall_table,
    validation_say,
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


def batch_norm_statistics(net, crops: np.ndarray) -> list[tuple]:
    """(mean, standard deviation) per channel of every BatchNorm's input, over ``crops``, in one pass."""
    import torch

    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    sums = [[0, 0.0, 0.0] for _ in norms]

    def hook(total):
        def add(module, inputs, output):
            x = inputs[0].detach().double()
            total[0] += x.shape[0] * x.shape[2] * x.shape[3]
            total[1] = total[1] + x.sum((0, 2, 3))
            total[2] = total[2] + (x ** 2).sum((0, 2, 3))
        return add

    handles = [norm.register_forward_hook(hook(total)) for norm, total in zip(norms, sums)]
    torch_logits(net, crops)
    for handle in handles:
        handle.remove()
    return [(s1 / n, (s2 / n - (s1 / n) ** 2).clamp_min(1e-10).sqrt()) for n, s1, s2 in sums]


def torch_logits(net, crops: np.ndarray) -> np.ndarray:
    import torch

    return predict_logits(net, torch.from_numpy(crops.astype(np.float32) / 255.0)[:, None], np.arange(len(crops)))


def batch_norm_adapted(run: Path, source: np.ndarray, target: np.ndarray):
    """The run's net with each BatchNorm's input moved, layer by layer (each after the ones before it), from the
    statistics of the ``target`` crops to those of the ``source`` crops."""
    import torch

    net = net_from_onnx(run / WEIGHTS)
    wanted = batch_norm_statistics(net, source)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for k, (norm, (mean_s, sd_s)) in enumerate(zip(norms, wanted)):
            mean_t, sd_t = batch_norm_statistics(net, target)[k]
            bias = norm.bias.clone()  # the folded convolution's bias: (x - mean_t) / sd_t * sd_s + mean_s + bias
            norm.running_mean.copy_(mean_t.float())
            norm.running_var.copy_((sd_t ** 2).float() - norm.eps)
            norm.weight.copy_(sd_s.float())
            norm.bias.copy_(mean_s.float() + bias)
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "omniemo" / "face-crops.npz")
    parser.add_argument("--raf-only", type=Path, required=True, help="out-dir of a face recipe run on RAF-DB alone")
    parser.add_argument("--fer-only", type=Path, required=True, help="out-dir of a face recipe run on FER2013 alone")
    parser.add_argument("--batch-norm", action="store_true", help="also the nets' BatchNorms re-standardised on the set")
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
    say = validation_say(crops, sets)  # the outside models' say by each face's sharpness, as the pipeline weighs them
    rng = np.random.default_rng(0)
    draw = np.random.default_rng(1)  # the BatchNorm experiment's own draws, so the other rows stay as they were
    out = {}
    for run, own, other in ((args.raf_only, "rafdb", "fer2013"), (args.fer_only, "fer2013", "rafdb")):
        net = ExpressionModel.from_dir(run)
        temperature = fit_temperature(net.logits(crops[sets[own]]), y[sets[own]])
        weights = {n: 0.0 if EXPERT_HOME.get(n) == other else w for n, w in shipped.weights.items()}
        def product(logits):
            return product_of_experts(log_softmax(logits / temperature), {n: experts[n][other] for n in EXPERTS},
                                      weights, shipped.floor, say[other])

        logp = product(net.logits(crops[sets[other]]))
        out[f"{own} net, never saw {other}"] = readings(logp, y[sets[other]], rng)
        print(f"{own} net, never saw {other}:", out[f"{own} net, never saw {other}"], flush=True)
        if args.batch_norm:
            truth, target = y[sets[other]], crops[sets[other]]
            row = {}
            for n in (20, 100, len(target)):
                draws = ([target[draw.choice(len(target), n, replace=False)] for _ in range(3)] if n < len(target)
                         else [target])
                read = [product(torch_logits(batch_norm_adapted(run, crops[sets[own]], d), target)) for d in draws]
                row[f"from {n} faces: as read"] = round(float(np.mean([uar(lp, truth) for lp in read])), 1)
                row[f"from {n} faces: centred"] = round(float(np.mean([uar(adapted(lp, lp), truth) for lp in read])), 1)
            out[f"{own} net, never saw {other}, BatchNorms on the set"] = row
            print(f"{own} net, never saw {other}, BatchNorms on the set:", row, flush=True)
    for s, idx in sets.items():
        logp = product_of_experts(log_softmax(shipped.logits(crops[idx]) / shipped.temperature),
                                  {n: experts[n][s] for n in EXPERTS}, shipped.weights, shipped.floor, say[s])
        out[f"shipped model at home, {s}"] = readings(logp, y[idx], rng)
        print(f"shipped model at home, {s}:", out[f"shipped model at home, {s}"], flush=True)
    files.write_text(HERE / "out" / "face_adaptation.json", json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

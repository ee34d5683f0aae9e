"""Adapting the face to a set recorded alike (``--adapt``, ``--adapt-corpus``): on faces of a set the nets never
saw, and at home.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_face_adaptation.py --raf-only DIR --fer-only DIR
        [--cache ~/.cache/omniemo/face-crops.npz] [--batch-norm [--faces 20,100,all] [--draws 3] [--pooled]]
        [--skip-home] [--skip-unseen] [--out FILE]
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_face_adaptation.py --raf-only DIR --fer-only DIR --timing
    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_face_adaptation.py --raf-only DIR --fer-only DIR --photometric

``--raf-only`` / ``--fer-only``: out-dirs of face recipe runs trained on one set alone (the README's
``--held-out-run`` commands). Each such net, at its home temperature, in the shipped product's form (the outside
models at the shipped weights and floor; each left out on the set it was trained on, ``EXPERT_HOME``), reads
the set it never saw: UAR as it is, and with each class's log-probability centred on its mean over the set
(``expression.FaceProfile`` for a model without convolution statistics), over the whole set, over the mean of
20 / 50 / 200 random faces of it, and over sets where one emotion makes half the faces (each emotion in turn, 10
draws, the mean taken from 100 of their faces). The shipped model reads its own validation faces the same ways
(the cost at home). ``--batch-norm``: also the nets re-standardised on the set, as ``--adapt`` does
(``conv_restandardise``): each convolution's output moved from its statistics on ``--faces`` random faces of the
set (``--draws`` draws; all: the whole set) to those on the home's validation faces, layer by layer (AdaBN), then
read as it is and centred as well, and on sets where one emotion makes half the faces; the one-set nets towards
their own set, the shipped nets towards the nearer of the two (``nearest_home``; ``--pooled``: towards both sets'
faces pooled, the design first tried); the whole-set rows read a set as one batch (about 10 GB for FER2013's 3,521
faces; ``--faces 20,100,200`` needs far less). ``--timing``: only the seconds ``--adapt`` takes on 12 and 100 images
(``adapt_timing``). ``--photometric``: only per-image normalisations of our nets' crop, tried at test time and
not kept (``photometric_variants``). Results: bench/out/face_adaptation.json (``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import onnx

from omniemo import files
from omniemo.perception.conv_restandardise import nearest_home, restandardised, source_statistics
from omniemo.perception.expression import (
    EXPERTS,
    ExpressionModel,
    face_profile,
    log_softmax,
    model_files,
    product_of_experts,
)
from omniemo.perception.models import onnx_session
from omniemo.train.face_expression import (
    EXPERT_HOME,
    FaceExpressionConfig,
    expert_crops,
    face_images,
    fit_temperature,
    prepare_crops,
    recall_table,
    validation_say,
    validation_sets,
)

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
SHIPPED = HERE.parent / "src" / "omniemo" / "perception" / "weights"


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


_HOME_STATISTICS: dict = {}


def home_statistics(path: Path, home_crops: np.ndarray):
    """``source_statistics`` of the net at ``path`` over ``home_crops``, computed once per net and set of crops."""
    key = (str(path), hashlib.sha1(home_crops.tobytes()).hexdigest())
    if key not in _HOME_STATISTICS:
        _HOME_STATISTICS[key] = source_statistics(onnx.load(str(path)), home_crops)
    return _HOME_STATISTICS[key]


def restandardised_logits(paths: list[Path], homes: dict[str, np.ndarray], set_crops: np.ndarray,
                          crops: np.ndarray) -> tuple[np.ndarray, str]:
    """(the mean logits over the nets in ``paths`` of ``crops``, the home chosen): each net re-standardised from
    ``set_crops`` to the statistics of the home (``homes``: name -> its faces) the first net finds them nearest
    (``conv_restandardise``), as the pipeline's ``--adapt`` does."""
    stats = {name: [home_statistics(path, faces) for path in paths] for name, faces in homes.items()}
    home = nearest_home(onnx.load(str(paths[0])), {name: s[0] for name, s in stats.items()}, set_crops)
    runs = []
    for path, home_stats in zip(paths, stats[home]):
        session = onnx_session(restandardised(onnx.load(str(path)), home_stats, set_crops))
        runs.append(session.run(None, {session.get_inputs()[0].name: (crops.astype(np.float32) / 255.0)[:, None]})[0])
    return np.mean(runs, axis=0).astype(np.float64), home


def restandardised_readings(paths, homes, crops, truth, product, rng, counts=(20, 100, 0), draws=3) -> dict:
    """UAR of the product on ``crops`` with the nets re-standardised on ``counts`` random faces of the set (0: all of
    it; ``draws`` draws each), then centred on the set's mean as well; and on sets where one emotion makes half the
    faces (each emotion in turn, 2 draws, the statistics from 100 of their faces); with several ``homes``, how
    often each was chosen."""
    row, chosen = {}, []
    for n in (c or len(crops) for c in counts):
        draws_n = [rng.choice(len(crops), n, replace=False) for _ in range(draws)] if n < len(crops) else [np.arange(n)]
        read = []
        for d in draws_n:
            logits, home = restandardised_logits(paths, homes, crops[d], crops)
            read.append(product(logits, np.arange(len(crops))))
            chosen.append(home)
        row[f"from {n} faces: as read"] = round(float(np.mean([uar(lp, truth) for lp in read])), 1)
        row[f"from {n} faces: centred"] = round(float(np.mean([uar(adapted(lp, lp), truth) for lp in read])), 1)
    skewed = []
    for k in np.unique(truth):
        major, minor = np.flatnonzero(truth == k), np.flatnonzero(truth != k)
        for _ in range(2):
            half = min(len(major), 150)
            rows = np.r_[rng.choice(major, half, replace=False), rng.choice(minor, half, replace=False)]
            fit = rng.choice(rows, min(100, len(rows)), replace=False)
            logits, home = restandardised_logits(paths, homes, crops[fit], crops[rows])
            skewed.append(uar(product(logits, rows), truth[rows]))
            chosen.append(home)
    row["one emotion half the set: re-standardised"] = round(float(np.mean(skewed)), 1)
    if len(homes) > 1:
        row["home chosen"] = {name: chosen.count(name) for name in homes}
    return row


def adapt_timing(rows: list[dict], counts=(12, 100)) -> dict:
    """Seconds to adapt the face to a set of ``counts`` FER2013 public-test images as ``--adapt`` does, on one
    thread, models loaded: reading the files (``adapt_faces``: detection, landmarks, the product, the crops kept),
    of which choosing the home and re-standardising our nets is timed apart (the first clip read with the profile)."""
    import time

    from omniemo.perception.pipeline import FACE_ANALYZERS, adapt_faces, extract_cues

    images = [r["path"] for r in rows if r["source"] == "fer2013"]
    extract_cues(images[0], modalities=("face",))  # models loaded
    out = {}
    for n in counts:
        start = time.perf_counter()
        profile = adapt_faces(images[:n])
        read = time.perf_counter() - start
        start = time.perf_counter()
        with FACE_ANALYZERS.lend() as faces:
            faces.new_clip(profile)
        out[f"{n} images"] = {"read the set, s": round(read, 2), "re-standardise, s": round(time.perf_counter() - start, 2),
                              "faces": int(len(profile.crops)), "home": profile.home}
        print(f"{n} images:", out[f"{n} images"], flush=True)
    return out


def photometric_variants(crops: np.ndarray) -> dict:
    """Per-image normalisations of a 48-pixel crop tried at test time (not in the pipeline): the crop's grey mean
    and spread set to the median over ``crops`` (fully, halfway), CLAHE, histogram equalisation."""
    import cv2

    flat = crops.reshape(len(crops), -1).astype(np.float64)
    target_mean, target_sd = float(np.median(flat.mean(1))), float(np.median(flat.std(1)))
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))

    def levelled(crop, strength):
        x = crop.astype(np.float32)
        mean, sd = x.mean(), x.std() + 1e-6
        want_mean, want_sd = mean + strength * (target_mean - mean), sd + strength * (target_sd - sd)
        return np.clip((x - mean) / sd * want_sd + want_mean, 0, 255).astype(np.uint8)

    return {"levelled": lambda c: levelled(c, 1.0), "levelled halfway": lambda c: levelled(c, 0.5),
            "CLAHE": clahe.apply, "equalised": cv2.equalizeHist}


def photometric_readings(nets: dict, crops, y, sets, product_for) -> dict:
    """UAR of each net's product (``product_for(name, set)``) on each set it reads, as is and with each of
    ``photometric_variants`` applied to our nets' crops (the outside models read theirs as they are)."""
    variants = photometric_variants(crops)
    out = {}
    for name, (net, read_sets) in nets.items():
        for s in read_sets:
            product = product_for(name, s)
            row = {"as is": uar(product(net.logits(crops[sets[s]])), y[sets[s]])}
            for variant, change in variants.items():
                changed = np.stack([change(c) for c in crops[sets[s]]])
                row[variant] = uar(product(net.logits(changed)), y[sets[s]])
            out[f"{name} on {s}"] = row
            print(f"{name} on {s}:", row, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "omniemo" / "face-crops.npz")
    parser.add_argument("--raf-only", type=Path, required=True, help="out-dir of a face recipe run on RAF-DB alone")
    parser.add_argument("--fer-only", type=Path, required=True, help="out-dir of a face recipe run on FER2013 alone")
    parser.add_argument("--batch-norm", action="store_true", help="also the nets re-standardised on the set")
    parser.add_argument("--faces", default="20,100,all", help="set sizes to re-standardise on (all: the whole set)")
    parser.add_argument("--draws", type=int, default=3, help="random draws of each smaller set")
    parser.add_argument("--skip-home", action="store_true", help="leave out the shipped model at home")
    parser.add_argument("--skip-unseen", action="store_true", help="leave out the one-set nets")
    parser.add_argument("--pooled", action="store_true",
                        help="re-standardise the shipped model towards all validation faces pooled, not the nearest set's")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "face_adaptation.json")
    parser.add_argument("--timing", action="store_true", help="only time adapting to 12 and 100 images (OMP_NUM_THREADS=1)")
    parser.add_argument("--photometric", action="store_true",
                        help="only per-image photometric normalisations of our nets' crop (tried, not in the pipeline)")
    args = parser.parse_args()
    counts = tuple(0 if c == "all" else int(c) for c in args.faces.split(","))
    config = FaceExpressionConfig(fer2013_root=DATA / "fer2013", rafdb_root=DATA / "rafdb-basic", cache=args.cache)
    rows = [r for r in face_images(config) if r["split"] == "validation"]
    if args.timing:
        files.write_text(args.out, json.dumps(adapt_timing(rows), indent=1) + "\n")
        return
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
    if args.photometric:
        nets, products = {"shipped model": (shipped, list(sets))}, {}
        for run, own, other in ((args.raf_only, "rafdb", "fer2013"), (args.fer_only, "fer2013", "rafdb")):
            net = ExpressionModel.from_dir(run)
            nets[f"{own} net"] = (net, [other])
            products[f"{own} net"] = (fit_temperature(net.logits(crops[sets[own]]), y[sets[own]]),
                                      {n: 0.0 if EXPERT_HOME.get(n) == other else w for n, w in shipped.weights.items()})

        def product_for(name, s):
            temperature, weights = products.get(name, (shipped.temperature, shipped.weights))
            return lambda logits: product_of_experts(log_softmax(logits / temperature), {n: experts[n][s] for n in EXPERTS},
                                                     weights, shipped.floor, say[s])

        files.write_text(args.out, json.dumps(photometric_readings(nets, crops, y, sets, product_for), indent=1) + "\n")
        return
    for run, own, other in () if args.skip_unseen else ((args.raf_only, "rafdb", "fer2013"), (args.fer_only, "fer2013", "rafdb")):
        net = ExpressionModel.from_dir(run)
        temperature = fit_temperature(net.logits(crops[sets[own]]), y[sets[own]])
        weights = {n: 0.0 if EXPERT_HOME.get(n) == other else w for n, w in shipped.weights.items()}

        def product(logits, rows=slice(None)):  # rows: of the set the net never saw
            return product_of_experts(log_softmax(logits / temperature), {n: experts[n][other][rows] for n in EXPERTS},
                                      weights, shipped.floor, say[other][rows])

        logp = product(net.logits(crops[sets[other]]))
        out[f"{own} net, never saw {other}"] = readings(logp, y[sets[other]], rng)
        print(f"{own} net, never saw {other}:", out[f"{own} net, never saw {other}"], flush=True)
        if args.batch_norm:
            key = f"{own} net, never saw {other}, re-standardised on the set"
            out[key] = restandardised_readings(model_files(run)[1], {own: crops[sets[own]]}, crops[sets[other]],
                                               y[sets[other]], product, draw, counts, args.draws)
            print(f"{key}:", out[key], flush=True)
    home = np.concatenate(list(sets.values()))
    for s, idx in ({} if args.skip_home else sets).items():
        def shipped_product(logits, rows=slice(None), s=s):
            return product_of_experts(log_softmax(logits / shipped.temperature), {n: experts[n][s][rows] for n in EXPERTS},
                                      shipped.weights, shipped.floor, say[s][rows])

        out[f"shipped model at home, {s}"] = readings(shipped_product(shipped.logits(crops[idx])), y[idx], rng)
        print(f"shipped model at home, {s}:", out[f"shipped model at home, {s}"], flush=True)
        if args.batch_norm:  # towards the nearest set's validation faces (the pipeline), or (--pooled) all of them
            homes = {"pooled": crops[home]} if args.pooled else {h: crops[i] for h, i in sets.items()}
            key = f"shipped model at home, {s}, re-standardised on the set" + (" (pooled home)" if args.pooled else "")
            out[key] = restandardised_readings(model_files(SHIPPED)[1], homes, crops[idx], y[idx],
                                               shipped_product, draw, counts, args.draws)
            print(f"{key}:", out[key], flush=True)
    files.write_text(args.out, json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

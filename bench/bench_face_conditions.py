"""How the face reading holds up when the picture is worse: the validation faces changed one way at a time.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_face_conditions.py [--cache ~/.cache/omniemo/face-crops.npz]
        [--only CONDITION] [--workers 2] [--no-denoise] [--model DIR]
        [--say-grid --held-out-run RAF_ONLY_DIR --held-out-run FER_ONLY_DIR]

The faces of `bench/bench_face.py` (FER2013 public test; the 15 % of RAF-DB train the face recipe set aside
before training), cropped as the pipeline crops a video frame, then changed as a user's video may change them:
dark or flat lighting, blur, a small face, JPEG blocks, sensor noise, a mask over mouth and nose, dark glasses,
a head tilt the eye alignment did not undo. Each change is made to the 200-pixel crop of a face (the one the
wheel models read), in units of the 48-pixel crop where a size matters, and the 48-pixel crop our nets read is
made from the changed one (area resampling, as the pipeline makes it from a frame), so every model sees the same
face; the faces "as cropped" are read the same way. Per condition and set: WAR / UAR of the shipped product (our
two nets x the outside models it weighs), of our nets alone, and of each outside model alone (mini-Xception, `facex`,
face-api.js, whether the product weighs it or not); and how many of the product's answers stay as on the clean face.
Every model reads the crops as the pipeline gives them, denoised where grainy (``expression.denoised``);
``--no-denoise`` reads them as changed. ``--model DIR``: the model of a face-expression run's out-dir instead of
the shipped one (e.g. one trained further with ``--degrade``). The product's outside models weigh in by each crop's
sharpness, as in the pipeline (``expression.outside_say``); ``--say-grid`` also scores other thresholds of that
rule, at home and, with ``--held-out-run`` (the out-dirs of runs trained on one face set alone), with those nets in
the product's form on the set they never saw. Results: bench/out/face_conditions.json (the voice has the same for
recordings: bench_voice_conditions.py).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


# Each condition: a function of (grey crop as float, the crop's side in pixels) -> the changed crop; sizes are
# given in pixels of a 48-pixel crop and scaled to the side.
def _dark(x, side):
    return np.clip(255.0 * (x / 255.0) ** 2.2 * 0.6, 0, 255)  # underexposed: gamma 2.2, then 60 % of the light


def _flat(x, side):
    return np.clip(x.mean() + 0.35 * (x - x.mean()), 0, 255)  # low contrast: 35 % of the spread around the mean


def _blur(sigma):
    def blur(x, side):
        import cv2

        return cv2.GaussianBlur(x, (0, 0), sigmaX=sigma * side / 48)  # out of focus, or moving

    return blur


def _small(x, side):
    import cv2

    tiny = cv2.resize(x, (20, 20), interpolation=cv2.INTER_AREA)  # a face 20 pixels wide (a wide shot, a webcam)
    return cv2.resize(tiny, (side, side), interpolation=cv2.INTER_LINEAR)


def _jpeg(x, side):
    import cv2

    ok, data = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, 10])
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)


def _noise(sd):
    def noise(x, side):
        import cv2

        # sensor noise in a dim room, grain the size of a 48-pixel crop's pixel (a small face); a fixed draw
        grain = np.random.default_rng(0).normal(0, sd, (48, 48))
        return np.clip(x + cv2.resize(grain, (side, side), interpolation=cv2.INTER_NEAREST), 0, 255)

    return noise


def _mask(x, side):
    out = x.copy()
    out[int(0.58 * side):, int(0.12 * side):int(0.88 * side)] = 200  # a light surgical mask over nose and mouth
    return out


def _glasses(x, side):
    out = x.copy()
    out[int(0.31 * side):int(0.48 * side), int(0.15 * side):int(0.85 * side)] = 25  # dark glasses over both eyes
    return out


def _tilt(x, side):
    import cv2

    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), 15, 1.0)  # a head roll the alignment missed
    return cv2.warpAffine(x, matrix, (side, side), borderMode=cv2.BORDER_REPLICATE)


def _mirror(x, side):
    return x[:, ::-1]  # a selfie camera: the models should not care


CONDITIONS = {
    "as cropped": None,
    "dark (gamma 2.2, 60 % light)": _dark,
    "flat light (35 % contrast)": _flat,
    "blurred (sigma 1 px of 48)": _blur(1.0),
    "blurred (sigma 2 px of 48)": _blur(2.0),
    "small face (20 px wide)": _small,
    "JPEG quality 10 (of the 200-pixel face)": _jpeg,
    "sensor noise (sd 10 grey levels)": _noise(10),
    "sensor noise (sd 20 grey levels)": _noise(20),
    "mask over nose and mouth": _mask,
    "dark glasses": _glasses,
    "head tilted 15 degrees": _tilt,
    "mirrored": _mirror,
}
OUTSIDE = {"fer": "fer mini-Xception", "facex": "facex", "faceapi": "face-api.js"}
MODELS = ("omniemo (shipped product)", "our nets alone", *OUTSIDE.values())


def changed(wide: np.ndarray, condition: str) -> tuple[np.ndarray, np.ndarray]:
    """(48-pixel crops, 200-pixel crops) of the faces under ``condition``, from their 200-pixel crops."""
    import cv2

    from omniemo.perception.expression import INPUT_SIZE

    change = CONDITIONS[condition]
    if change is not None:
        side = wide.shape[1]
        wide = np.stack([np.asarray(change(c.astype(np.float32), side)).round().clip(0, 255).astype(np.uint8)
                         for c in wide])
    small = np.stack([cv2.resize(c, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA) for c in wide])
    return small, wide


FACES: dict = {}  # in each worker process: the validation faces, read once


def validation_faces(cache: Path) -> dict:
    """{"wide", "y", "source"}: the validation faces' 200-pixel crops (through the recipe's crop cache)."""
    from omniemo.perception.expression import CLASSES, EXPERT_INPUT_SIZE
    from omniemo.train.face_expression import FaceExpressionConfig, face_images, prepare_crops

    config = FaceExpressionConfig(fer2013_root=DATA / "fer2013", rafdb_root=DATA / "rafdb-basic", cache=cache)
    rows = [r for r in face_images(config) if r["split"] == "validation"]
    return {"wide": prepare_crops(rows, config, EXPERT_INPUT_SIZE)[0],
            "y": np.array([CLASSES.index(r["label"]) for r in rows]), "source": np.array([r["source"] for r in rows])}


def _load(cache: Path, denoise: bool, model_dir: Path | None, held_out_runs: list[Path]) -> None:
    FACES.update(validation_faces(cache), denoise=denoise, model_dir=model_dir, held_out_runs=held_out_runs)


def expression_model(model_dir: Path | None):
    """The shipped expression model, or the one a face-expression run wrote to ``model_dir``."""
    from omniemo.perception.expression import ExpressionModel

    return ExpressionModel() if model_dir is None else ExpressionModel.from_dir(model_dir)


def batched_logits(model, crops: np.ndarray) -> np.ndarray:
    return np.vstack([model.logits(crops[i:i + 256]) for i in range(0, len(crops), 256)])


def _read(condition: str) -> tuple[str, dict]:
    """Every model's reading of every face under one condition: our nets' logits, each outside model's
    probabilities, each crop's sharpness, and the logits of nets trained on one set alone (``--held-out-run``)."""
    from omniemo.perception.expression import EXPERTS, WEIGHTS, ExpressionModel, denoised, sharpness

    model = expression_model(FACES["model_dir"])
    outside = {name: model.experts.get(name) or EXPERTS[name]() for name in OUTSIDE}
    small, large = changed(FACES["wide"], condition)
    if FACES["denoise"]:
        small, large = (np.stack(c) for c in zip(*(denoised(s, w)[:2] for s, w in zip(small, large))))
    return condition, {
        "nets": batched_logits(model, small),
        "experts": {name: np.stack([read(w) for w in large]) for name, read in outside.items()},
        "sharpness": np.array([sharpness(c) for c in small]),
        "held_out": {run.name: batched_logits(ExpressionModel(run / WEIGHTS, {"temperature": 1.0}), small)
                     for run in FACES["held_out_runs"]}}


def product_answers(model, reading: dict, say: np.ndarray) -> np.ndarray:
    """The product's answers, as ``ExpressionModel`` gives them face by face (its temperature moves no answer)."""
    from omniemo.perception.expression import log_softmax, product_of_experts

    return product_of_experts(log_softmax(reading["nets"] / model.temperature), reading["experts"], model.weights,
                              model.floor, say).argmax(1)


def say_grid(model, readings: dict, y: np.ndarray, source: np.ndarray, runs: list[dict]) -> None:
    """How the outside models' say, scaled by sharpness between ``none`` and ``full``, moves ``model``'s product on
    the clean faces and over the changes, and the one-set nets in the product's form on the set they never saw."""
    from omniemo.perception.expression import SHARPNESS_FULL, SHARPNESS_NONE, log_softmax, outside_say, product_of_experts
    from omniemo.train.face_expression import EXPERT_HOME, recall_table

    changes = [c for c in readings if c not in ("as cropped", "mirrored")]
    sets = [s for s in ("fer2013", "rafdb") if (source == s).any()]

    def scores(reading, say):
        home = product_answers(model, reading, say)
        away = []
        for run in runs:
            rows = source == run["read"]
            weights = {n: 0.0 if EXPERT_HOME.get(n) == run["read"] else w for n, w in model.weights.items()}
            logp = log_softmax(reading["held_out"][run["name"]][rows] / run["temperature"])
            answers = product_of_experts(logp, {n: p[rows] for n, p in reading["experts"].items()}, weights,
                                         model.floor, say[rows] if np.ndim(say) else say).argmax(1)
            away.append(recall_table(y[rows], answers)["uar"])
        return [recall_table(y[source == s], home[source == s])["uar"] for s in sets], away

    shipped = (SHARPNESS_NONE, SHARPNESS_FULL)
    print(f"\n| condition | home ({' / '.join(sets)}): always full -> shipped rule | never seen"
          f" ({' / '.join(r['name'] + ' on ' + r['read'] for r in runs)}): always full -> shipped rule |\n|---|---|---|")
    for condition, reading in readings.items():
        (home, away), (home_gated, away_gated) = (scores(reading, 1.0),
                                                  scores(reading, outside_say(reading["sharpness"], *shipped)))
        print(f"| {condition} | " + " | ".join(f"{' / '.join(f'{u:.1f}' for u in a)} -> {' / '.join(f'{u:.1f}' for u in b)}"
                                               for a, b in ((home, home_gated), (away, away_gated))) + " |")
    print("\n| say: none - full | clean, home (" + " / ".join(sets) + ") | clean, never seen | 11 changes, home mean |"
          " 11 changes, never seen mean |\n|---|---|---|---|---|")
    grid = [None] + [(a, b) for a in (0.03, 0.05, 0.07, 0.1, 0.12) for b in (0.1, 0.15, 0.2, 0.25, 0.3) if b > a]
    for gate in grid:
        say = {c: 1.0 if gate is None else outside_say(r["sharpness"], *gate) for c, r in readings.items()}
        clean = scores(readings["as cropped"], say["as cropped"])
        moved = [scores(readings[c], say[c]) for c in changes]
        name = "always full" if gate is None else f"{gate[0]:g} - {gate[1]:g}" + (
            " (shipped)" if gate == shipped else "")
        print(f"| {name} | {' / '.join(f'{u:.1f}' for u in clean[0])} | {' / '.join(f'{u:.1f}' for u in clean[1])} | "
              f"{np.mean([m[0] for m in moved]):.2f} | {np.mean([m[1] for m in moved]) if runs else float('nan'):.2f} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "omniemo" / "face-crops.npz")
    parser.add_argument("--only", help="run the conditions whose name contains this text (and the clean faces)")
    parser.add_argument("--workers", type=int, default=2, help="processes, one condition at a time each")
    parser.add_argument("--no-denoise", action="store_true", help="read grainy crops without denoising them")
    parser.add_argument("--model", type=Path, help="a face-expression run's out-dir to read instead of the shipped model")
    parser.add_argument("--say-grid", action="store_true",
                        help="also score the outside models' say scaled by sharpness over a grid of thresholds")
    parser.add_argument("--held-out-run", type=Path, action="append", default=[],
                        help="with --say-grid: the out-dir of a run trained on one face set alone (twice: one per set)")
    args = parser.parse_args()
    from omniemo.perception.expression import outside_say
    from omniemo.train.face_expression import recall_table

    faces = validation_faces(args.cache)  # builds the crop cache once, before the workers read it
    y, source = faces["y"], faces["source"]
    conditions = [c for c in CONDITIONS if c == "as cropped" or not args.only or args.only in c]
    # spawn, not fork: a forked child inherits the parent's model threads mid-state
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_load,
                             initargs=(args.cache, not args.no_denoise, args.model, args.held_out_run)) as pool:
        readings = dict(pool.map(_read, conditions))
    model = expression_model(args.model)
    answers = {}
    for condition, reading in readings.items():
        answers[condition] = {MODELS[0]: product_answers(model, reading, outside_say(reading["sharpness"])),
                              MODELS[1]: reading["nets"].argmax(1),
                              **{title: reading["experts"][name].argmax(1) for name, title in OUTSIDE.items()}}
    report = {}
    sets = [s for s in ("fer2013", "rafdb") if (source == s).any()]
    head = " | ".join(f"{s}: {m}" for s in sets for m in ("product", "nets", *OUTSIDE, "same"))
    print(f"| condition | {head} |\n|---|" + "---|" * ((len(MODELS) + 1) * len(sets)))
    for condition in conditions:
        report[condition] = {}
        cells = []
        for s in sets:
            rows_s = source == s
            r = {m: recall_table(y[rows_s], answers[condition][m][rows_s]) for m in MODELS}
            same = float(np.mean(answers[condition][MODELS[0]][rows_s] == answers["as cropped"][MODELS[0]][rows_s]))
            report[condition][s] = {**r, "product_answers_unchanged": round(100 * same, 1)}
            cells += [f"{r[m]['war']:.1f} / {r[m]['uar']:.1f}" for m in MODELS] + [f"{100 * same:.0f}"]
        print(f"| {condition} | " + " | ".join(cells) + " |", flush=True)
    (HERE / "out").mkdir(exist_ok=True)
    from omniemo import files

    name = "face_conditions.json" if args.model is None else f"face_conditions.{args.model.name}.json"
    files.write_text(HERE / "out" / name, json.dumps(report, indent=2) + "\n")
    if args.say_grid:
        say_grid(model, readings, y, source, one_set_runs(args.held_out_run, faces, readings["as cropped"]))


def one_set_runs(paths: list[Path], faces: dict, clean: dict) -> list[dict]:
    """Each run trained on one set alone: its name, the set it never saw, and its temperature fitted at home (on
    its own set's clean validation faces), as the recipe's never-seen column reads it."""
    from omniemo.train.face_expression import fit_temperature, one_set_run

    runs = []
    for path in paths:
        own = one_set_run(path)[0]
        rows = faces["source"] == own
        others = [s for s in np.unique(faces["source"]) if s != own]
        runs += [{"name": path.name, "read": other,
                  "temperature": fit_temperature(clean["held_out"][path.name][rows], faces["y"][rows])}
                 for other in others]
    return runs


if __name__ == "__main__":
    main()

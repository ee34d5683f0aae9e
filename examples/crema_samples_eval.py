"""Score the whole CPU pipeline on the 12 CREMA-D sample clips (6 audio-visual FLV, 6 audio-only MP3).

    .venv/bin/python examples/crema_samples_eval.py [--out bench/out/crema-samples.jsonl]

Writes one JSON line per clip (ground truth `label`, `prediction`, raw `output`), as `omniemo score` reads
them, then prints the scores with both the acted labels and the crowd's perceived labels. Twelve clips of
two actors: a smoke test of the whole pipeline, not an accuracy claim.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from omniemo.eval.predictions import score_file
from omniemo.labels import CREMAD
from omniemo.perception.models import quiet_native_stderr
from omniemo.predictor import get_predictor

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "crema-d-samples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/out/crema-samples.jsonl"))
    args = parser.parse_args()
    voted = {}
    with (SAMPLES / "CREMA-D_summaryTable.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            vote = row["MultiModalVote"].split(":")[0]
            if vote in CREMAD.codes:
                voted[row["FileName"]] = CREMAD.from_code(vote)
    predictor = get_predictor("pipeline")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    perceived = args.out.with_name(args.out.stem + "-perceived.jsonl")
    with args.out.open("w") as acted_file, perceived.open("w") as voted_file, quiet_native_stderr():
        for clip in sorted(SAMPLES.glob("*.flv")) + sorted(SAMPLES.glob("*.mp3")):
            p = predictor.predict(clip, "cremad")
            acted = CREMAD.from_code(clip.stem.split("_")[2])
            row = {"path": clip.name, "prediction": p.label, "output": p.output, "missing": p.missing_modalities}
            acted_file.write(json.dumps({"label": acted, **row}) + "\n")
            if clip.stem in voted:
                voted_file.write(json.dumps({"label": voted[clip.stem], **row}) + "\n")
            print(f"{clip.name:24} acted {acted:8} perceived {voted.get(clip.stem, '-'):8} -> {p.label}")
    for name, path in (("acted labels", args.out), ("perceived labels (crowd vote)", perceived)):
        scores, _ = score_file(path, "cremad")
        print(f"{name}: WAR {100 * scores.war:.1f} UAR {100 * scores.uar:.1f} (n={scores.n}; 95% CI of UAR "
              f"{100 * scores.uar_ci[0]:.0f}-{100 * scores.uar_ci[1]:.0f})")


if __name__ == "__main__":
    main()

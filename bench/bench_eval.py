"""Evaluation throughput: items per minute with 1 and 2 worker processes on 2 cores.

    .venv/bin/python bench/bench_eval.py [--limit 48]

The first N items of the RAVDESS speech test split (actors 21-24, ../shared/data), the default CPU pipeline,
fresh run folders under bench/out/eval-throughput/ (nothing resumed). Model loading is included: it is part
of what a run costs. Results: bench/out/eval-throughput.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from omniemo.eval.runner import EvalConfig, run_eval
from omniemo.perception.models import quiet_native_stderr

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent / "shared" / "data" / "ravdess-speech-16k"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=48)
    args = parser.parse_args()
    rows = []
    for workers in (1, 2):
        out = HERE / "out" / "eval-throughput" / f"workers-{workers}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        with quiet_native_stderr():
            run_eval(EvalConfig(dataset="ravdess", root=str(ROOT), out_dir=str(out), workers=workers, limit=args.limit))
        seconds = time.perf_counter() - start
        rows.append({"workers": workers, "items": args.limit, "seconds": round(seconds, 1),
                     "items_per_minute": round(60 * args.limit / seconds, 1)})
    print("| workers | items | seconds | items per minute |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['items']} | {r['seconds']} | {r['items_per_minute']} |")
    (HERE / "out" / "eval-throughput.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

"""Evaluation throughput on 2 cores: the local engine with 1 and 2 worker processes, and Ray Data with 2 CPUs.

    .venv/bin/python bench/bench_eval.py [--limit 60]

The first N items of the RAVDESS speech test split (actors 21-24, ../shared/data), the default CPU pipeline,
fresh run folders under bench/out/eval-throughput/ (nothing resumed), the same items for every engine. Model
loading is included (it is part of what a run costs); Ray's own start-up (ray.init) is reported apart.
Results: bench/out/eval-throughput.json.
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
    parser.add_argument("--limit", type=int, default=60)
    args = parser.parse_args()
    rows = []
    for engine, workers in (("local", 1), ("local", 2), ("ray", 2)):
        out = HERE / "out" / "eval-throughput" / f"{engine}-{workers}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        with quiet_native_stderr():
            meta = run_eval(EvalConfig(dataset="ravdess", root=str(ROOT), out_dir=str(out), workers=workers,
                                       limit=args.limit, engine=engine))
        seconds = time.perf_counter() - start
        startup = meta.get("ray_start_seconds", 0.0)
        rows.append({"engine": engine, "workers": workers, "items": args.limit, "seconds": round(seconds, 1),
                     "startup_seconds": startup, "items_per_minute": round(60 * args.limit / seconds, 1),
                     "items_per_minute_after_startup": round(60 * args.limit / (seconds - startup), 1)})
    print("| engine | workers / CPUs | items | seconds | Ray start-up s | items per minute | excluding start-up |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['workers']} | {r['items']} | {r['seconds']} | {r['startup_seconds']} | "
              f"{r['items_per_minute']} | {r['items_per_minute_after_startup']} |")
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "eval-throughput.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

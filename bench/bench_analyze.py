"""`omniemo analyze` end to end: real-time factor and peak memory on 2 cores.

    .venv/bin/python bench/bench_analyze.py

Clips: the six CREMA-D samples of actor 1001 (2 s each, ../shared/data) and the 60 s 720p clip that
bench_cues.py builds from them (run that first). One process per clip, after a warm-up analysis, so model
loading is reported apart and the peak RSS is that clip's. Results: bench/out/analyze.json.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SAMPLES = HERE.parent.parent / "shared" / "data" / "crema-d-samples"


def one(path: str) -> dict:
    from omniemo.perception.models import quiet_native_stderr
    from omniemo.predictor import get_predictor

    predictor = get_predictor("pipeline")
    with quiet_native_stderr():
        start = time.perf_counter()
        predictor.predict(SAMPLES / "1001_DFA_NEU_XX.flv", "cremad")
        warm = time.perf_counter() - start
        from omniemo.perception.models import whisper_model

        whisper_model().forget()  # the warm-up clip's encoder pass must not serve its own row
        start, cpu_start = time.perf_counter(), time.process_time()
        prediction = predictor.predict(path, "cremad")
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    duration = prediction.evidence.clip["duration"]
    return {"clip": Path(path).name, "duration": duration, "seconds": seconds, "realtime_factor": seconds / duration,
            "cpu_s": cpu_seconds,
            "label": prediction.label, "warmup_s": warm, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2])))
        return
    clips = sorted(SAMPLES.glob("1001_DFA_*.flv"))
    long_clip = OUT / "crema-1001-60s-720p.mp4"
    if long_clip.exists():
        clips.append(long_clip)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    rows = []
    for clip in clips:
        out = subprocess.run([sys.executable, __file__, "--one", str(clip)], check=True, capture_output=True, text=True, env=env)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| clip | seconds | analyze s | x real time | CPU s (all threads) | peak RSS MiB | answer |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clip']} | {r['duration']:.1f} | {r['seconds']:.2f} | {r['realtime_factor']:.3f} | {r['cpu_s']:.2f} | "
              f"{r['peak_rss_mib']:.0f} | {r['label']} |")
    short = [r for r in rows if r["duration"] < 10]
    print(f"mean over the {len(short)} short clips: {sum(r['realtime_factor'] for r in short) / len(short):.3f} x real time, "
          f"{sum(r['cpu_s'] for r in short) / len(short):.2f} CPU-seconds a clip; model loading + warm-up {rows[0]['warmup_s']:.1f} s per process (not counted)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "analyze.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

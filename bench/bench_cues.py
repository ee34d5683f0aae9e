"""Time of each perception stage and of the whole `cues` run, as a real-time factor, and peak memory.

    .venv/bin/python bench/bench_cues.py [--fps 5]

Clips: one CREMA-D sample (2.2 s, 480x360 FLV) from ../shared/data, and a 60 s 1280x720 H.264 clip built
here from the same actor: the frames of his six sample clips (upscaled) and his CREMA-D recordings of the
twelve sentences in sequence (../shared/data/crema-d-audio-16k/1001_*), written to bench/out/ (never
committed). Each clip runs in its own process, after a warm-up run, so the peak RSS is
that clip's and model loading is excluded from the stage times (it is reported apart).
Results: bench/out/cues.json.
"""

from __future__ import annotations

import argparse
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


def build_long_clip(path: Path, seconds: float = 60.0) -> Path:
    import cv2
    import numpy as np

    from omniemo import load_clip
    from omniemo.media.synth import write_frames

    clips = [load_clip(SAMPLES / f"1001_DFA_{e}_XX.flv", "fps:25") for e in ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")]
    small = [f for clip in clips for f in clip.frames]

    def frames():  # upscaled one at a time: the benchmark process must not hold the whole clip
        for i in range(int(seconds * 25)):
            yield cv2.resize(small[i % len(small)], (1280, 720), interpolation=cv2.INTER_LINEAR)

    speech = sorted((SAMPLES.parent / "crema-d-audio-16k").glob("1001_*.flac"))
    audio = np.concatenate([load_clip(f, sampling=None).audio for f in speech[::3]])  # varied sentences and emotions
    return write_frames(path, frames(), 25, audio=np.resize(audio, int(seconds * 16000)))


def one(path: str, fps: float) -> dict:
    from omniemo.perception import extract_cues
    from omniemo.perception.models import quiet_native_stderr

    with quiet_native_stderr():
        start = time.perf_counter()
        extract_cues(SAMPLES / "1001_DFA_NEU_XX.flv", fps=fps)  # warm-up: loads every model once
        warm = time.perf_counter() - start
        start = time.perf_counter()
        evidence = extract_cues(path, fps=fps)
        seconds = time.perf_counter() - start
    duration = evidence.clip["duration"]
    return {"clip": Path(path).name, "duration": duration, "seconds": seconds, "realtime_factor": seconds / duration,
            "stages": evidence.timings, "model_loading_and_warmup_s": warm,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "present": [m for m, r in evidence.modalities.items() if r.status == "present"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.fps)))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    long_clip = OUT / "crema-1001-60s-720p.mp4"
    if not long_clip.exists():
        partial = long_clip.with_suffix(".partial.mp4")
        build_long_clip(partial)
        partial.rename(long_clip)  # a failed build leaves no clip that looks finished
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    rows = []
    for clip in (SAMPLES / "1001_DFA_ANG_XX.flv", long_clip):
        out = subprocess.run([sys.executable, __file__, "--one", str(clip), "--fps", str(args.fps)],
                             check=True, capture_output=True, text=True, env=env)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    stages = sorted({k for r in rows for k in r["stages"]})
    print("| clip | seconds | whole run s | x real time | " + " | ".join(stages) + " | peak RSS MiB |")
    print("|---" * (5 + len(stages)) + "|")
    for r in rows:
        cells = " | ".join(f"{r['stages'].get(k, 0) / r['duration']:.3f}" for k in stages)
        print(f"| {r['clip']} | {r['duration']:.1f} | {r['seconds']:.2f} | {r['realtime_factor']:.3f} | {cells} | {r['peak_rss_mib']:.0f} |")
    print(f"(stage columns: seconds of compute per second of clip; models load once per process in "
          f"{rows[0]['model_loading_and_warmup_s']:.1f} s incl. a warm-up clip, not counted above)")
    (OUT / "cues.json").write_text(json.dumps({"fps": args.fps, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

"""Decode time and peak memory per frame-sampling strategy on a generated long 1080p clip.

    .venv/bin/python bench/bench_decode.py [--duration 600] [--fps 25]

Each strategy runs in its own process so its peak RSS is its own. Figures are seconds of decoding per
second of clip (the real-time factor) and peak resident memory. Results go to bench/out/decode.json.
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

OUT = Path(__file__).resolve().parent / "out"
STRATEGIES = ["humanomni:8", "uniform:32", "fps:1", "fps:2", "audio-only"]


def one(path: str, strategy: str, max_side: int | None) -> dict:
    from omniemo import load_clip

    start = time.perf_counter()
    if strategy == "audio-only":
        clip = load_clip(path, sampling=None)
    else:
        clip = load_clip(path, strategy, audio=False, max_side=max_side)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"strategy": strategy, "seconds": seconds, "frames": int(len(clip.frames)),
            "frame_shape": list(clip.frames.shape[1:]), "peak_rss_mib": peak_mib, "duration": clip.duration}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of generated 1080p clip")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--max-side", type=int, default=640, help="frame size kept by the fps strategies")
    parser.add_argument("--one", nargs=2, metavar=("PATH", "STRATEGY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        strategy = args.one[1]
        max_side = args.max_side if strategy.startswith("fps") else None
        print(json.dumps(one(args.one[0], strategy, max_side)))
        return

    from omniemo.media.synth import write_clip

    OUT.mkdir(parents=True, exist_ok=True)
    clip = OUT / f"long-1080p-{int(args.duration)}s.mp4"
    if not clip.exists():
        start = time.perf_counter()
        write_clip(clip, args.duration, fps=args.fps, size=(1920, 1080), gop_seconds=2.0)
        print(f"generated {clip} ({clip.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - start:.0f} s",
              file=sys.stderr)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    rows = []
    for strategy in STRATEGIES:
        out = subprocess.run([sys.executable, __file__, "--one", str(clip), strategy, "--max-side", str(args.max_side)],
                             check=True, capture_output=True, text=True, env=env)
        row = json.loads(out.stdout)
        row["realtime_factor"] = row["seconds"] / row["duration"]
        rows.append(row)
    print("| strategy | frames kept | frame size | decode s | x real time | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        size = "x".join(str(v) for v in r["frame_shape"][:2][::-1]) if r["frames"] else "-"
        print(f"| {r['strategy']} | {r['frames']} | {size} | {r['seconds']:.2f} | {r['realtime_factor']:.4f} | {r['peak_rss_mib']:.0f} |")
    (OUT / "decode.json").write_text(json.dumps({"clip": str(clip), "duration": args.duration, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

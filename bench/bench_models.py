"""Omni-model inference speed and memory: tiny random checkpoints, and HumanOmni-0.5B at full size (random weights).

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_models.py            # tiny models (about a minute)
    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_models.py --full     # + HumanOmni-0.5B, fp32 and bf16 (minutes)
    .venv/bin/python bench/bench_models.py --full --device cuda         # the same on a GPU

Each case runs in its own process, so its peak RSS is its own. Per case: load time, the prompt pass (media
encoders + LLM prefill over ~1,000 positions for 8 frames + 30 s of audio), decoding speed in tokens/s (32 new
tokens forced), for batch 1 and 4. Results: bench/out/models.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _peak_rss_mib() -> float:
    """This process's peak RSS since exec (VmHWM); getrusage's ru_maxrss can report the parent's instead."""
    import re

    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
OUT = HERE / "out"
NEW_TOKENS = 32


def _samples(n: int):
    from omniemo.models.processing import R1OMNI_INSTRUCTION, MediaSample

    rng = np.random.default_rng(0)
    return [MediaSample(R1OMNI_INSTRUCTION, rng.integers(0, 255, (8, 360, 640, 3), dtype=np.uint8),
                        (0.1 * rng.standard_normal(16000 * 8)).astype(np.float32)) for _ in range(n)]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _checkpoint(tmp: Path, size: str) -> Path:
    """A random HumanOmni checkpoint; with OMNIEMO_BENCH_CACHE=DIR, written there once and reused."""
    from omniemo.models.tiny import write_tiny_humanomni

    cache = os.environ.get("OMNIEMO_BENCH_CACHE")
    path = (Path(cache) if cache else tmp) / f"humanomni-{size}"
    if not (path / "model.safetensors").is_file():
        write_tiny_humanomni(path, size=size)
    return path


def case(kind: str, size: str, dtype: str, device: str, batch: int) -> dict:
    import torch

    from omniemo.models.backend import HumanOmniPredictor, OmniPredictor, QwenOmniPredictor

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        if kind == "humanomni":
            from omniemo.models.loading import load_humanomni

            path = _checkpoint(Path(tmp), size)
            made = time.perf_counter() - start
            start = time.perf_counter()
            model, proc = load_humanomni(path, device=device, dtype=dtype)
            predictor = HumanOmniPredictor.__new__(HumanOmniPredictor)
        else:
            from omniemo.models.qwen_omni import load_qwen_omni, write_tiny_qwen_omni

            path = write_tiny_qwen_omni(Path(tmp) / "ckpt")
            made = time.perf_counter() - start
            start = time.perf_counter()
            model, proc = load_qwen_omni(path, device=device, dtype=dtype)
            predictor = QwenOmniPredictor.__new__(QwenOmniPredictor)
        loaded = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters()) + sum(
        p.numel() for t in getattr(model, "towers", {}).values() if t is not None for p in t.parameters())
    OmniPredictor.__init__(predictor, model, proc, max_new_tokens=NEW_TOKENS)
    samples = _samples(batch)
    with torch.no_grad():
        predictor.prepare(samples[:1])  # warm-up
        start = time.perf_counter()
        prompt = predictor.prepare(samples)
        positions = prompt[1].shape[1] if kind == "humanomni" else prompt[1]["input_ids"].shape[1]
        if kind == "qwen-omni":  # its media encoders run inside the first forward
            model(**{k: v.to(model.device) if hasattr(v, "to") else v for k, v in prompt[1].items()})
        _sync(device)
        prompt_s = time.perf_counter() - start
        predictor.generation.update(min_new_tokens=NEW_TOKENS)
        start = time.perf_counter()
        predictor.generate(prompt)
        _sync(device)
        generate_s = time.perf_counter() - start
    peak = _peak_rss_mib()
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return {"model": kind, "size": size, "dtype": dtype, "device": device, "batch": batch, "parameters": params,
            "make_s": round(made, 2), "load_s": round(loaded, 2), "prompt_positions": positions,
            "prompt_pass_s": round(prompt_s, 3), "generate_s": round(generate_s, 3),
            "decode_tokens_per_s": round(batch * NEW_TOKENS / generate_s, 1),
            "peak_rss_mib": round(peak), "peak_gpu_mib": round(gpu_peak) if gpu_peak else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="Also HumanOmni-0.5B at full size (random weights).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--case", nargs=5, metavar=("KIND", "SIZE", "DTYPE", "DEVICE", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        kind, size, dtype, device, batch = args.case
        print(json.dumps(case(kind, size, dtype, device, int(batch))))
        return
    cases = [("humanomni", "tiny", "fp32", args.device, b) for b in (1, 4)]
    cases += [("qwen-omni", "tiny", "fp32", args.device, b) for b in (1, 4)]
    if args.full:
        dtypes = ("fp32", "bf16") if args.device == "cpu" else ("bf16",)
        cases += [("humanomni", "0.5b", d, args.device, b) for d in dtypes for b in (1, 4)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    results = []
    for c in cases:
        proc = subprocess.run([sys.executable, __file__, "--case", *map(str, c)], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            results.append({"case": list(c), "error": proc.stderr.strip().splitlines()[-1:]})
        else:
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / f"models-{args.device.split(':')[0]}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

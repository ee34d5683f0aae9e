"""SFT and GRPO step time and peak memory: tiny models on 2 cores, and a HumanOmni-0.5B SFT step at full size.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_train.py           # tiny SFT + GRPO (about a minute)
    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_train.py --full    # + HumanOmni-0.5B SFT step (random weights)
    .venv/bin/python bench/bench_train.py --full --grpo-full           # + a 0.5B GRPO step (slow on CPU: for GPUs)

Each case is a real `omniemo train` run (recipes/tiny-*.yaml with overrides) in its own process on the toy data;
step time is the median of the logged steps after the first, peak RSS the process's (and GPU peak on CUDA).
Results: bench/out/train-<device>.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"


def case(recipe: str, size: str, steps: int, extra: list[str]) -> dict:
    import torch

    from bench_models import _checkpoint, _peak_rss_mib

    from omniemo.train.config import load_config
    from omniemo.train.toy import write_toy_dataset

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = _checkpoint(tmp, size)
        manifest = write_toy_dataset(tmp / "toy", n_train=16, n_test=0)
        cfg = load_config(REPO / "recipes" / recipe, [
            f"model.path={ckpt}", f"data.root={manifest}", "data.split=train", f"output_dir={tmp / 'run'}",
            f"optim.max_steps={steps}", "logging_steps=1", *extra])
        start = time.perf_counter()
        if "grpo" in recipe:
            from omniemo.train.grpo import train_grpo as run
        else:
            from omniemo.train.sft import train_sft as run
        run(cfg)
        total = time.perf_counter() - start
        with (tmp / "run" / "metrics.csv").open() as handle:
            rows = list(csv.DictReader(handle))
    per_step = [float(r["step_s"]) for r in rows]
    grpo = "grpo" in recipe
    samples = cfg.optim.per_device_batch_size * cfg.optim.gradient_accumulation_steps * (
        cfg.grpo.num_generations if grpo else 1)
    peak = _peak_rss_mib()
    gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {"recipe": recipe, "size": size, "settings": extra, "steps": steps,
            "step_s_median": round(statistics.median(per_step[1:] or per_step), 3), "first_step_s": round(per_step[0], 3),
            "samples_per_step": samples, "run_s": round(total, 1), "peak_rss_mib": round(peak),
            "peak_gpu_mib": round(gpu) if gpu else None, "last": rows[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--grpo-full", action="store_true")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        spec = json.loads(args.case)
        print(json.dumps(case(**spec)))
        return
    cases = [
        {"recipe": "tiny-sft.yaml", "size": "tiny", "steps": 6, "extra": ["optim.per_device_batch_size=1",
                                                                           "optim.gradient_accumulation_steps=1"]},
        {"recipe": "tiny-grpo.yaml", "size": "tiny", "steps": 6,
         "extra": ["grpo.num_generations=8", "grpo.max_completion_length=32", "optim.per_device_batch_size=1",
                   "optim.gradient_accumulation_steps=1"]},
    ]
    if args.full:
        cases.append({"recipe": "tiny-sft.yaml", "size": "0.5b", "steps": 3,
                      "extra": ["optim.per_device_batch_size=1", "optim.gradient_accumulation_steps=1",
                                "model.gradient_checkpointing=true"]})
    if args.grpo_full:
        cases.append({"recipe": "tiny-grpo.yaml", "size": "0.5b", "steps": 3,
                      "extra": ["grpo.num_generations=8", "grpo.max_completion_length=64",
                                "optim.per_device_batch_size=1", "optim.gradient_accumulation_steps=1",
                                "model.gradient_checkpointing=true", "mixed_precision=bf16"]})
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    results = []
    for c in cases:
        proc = subprocess.run([sys.executable, __file__, "--case", json.dumps(c)], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            results.append({**c, "error": proc.stderr.strip().splitlines()[-3:]})
        else:
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    OUT.mkdir(exist_ok=True)
    device = "cuda" if os.environ.get("CUDA_VISIBLE_DEVICES", "") not in ("",) or _has_cuda() else "cpu"
    (OUT / f"train-{device}.json").write_text(json.dumps(results, indent=2))


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    main()

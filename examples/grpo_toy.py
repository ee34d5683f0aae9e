"""A seeded toy learning run: GRPO raises accuracy from a cold start (CPU, a few minutes).

The task (omniemo.train.toy): 1-second clips whose colour and tone give the label (happy, sad, angry).
1. A tiny random HumanOmni checkpoint.
2. Cold start, as R1-Omni's: SFT on reasoning-format answers (150 steps over the 48 training clips) - it
   learns the format and the words, and answers one label for every clip (33 % held out, chance).
3. GRPO with R = accuracy + format (strict, as published) on the same clips, video only, from the rewards alone.
Greedy accuracy on held-out clips is measured after each stage with `omniemo eval`'s runner.

    OMP_NUM_THREADS=1 .venv/bin/python examples/grpo_toy.py --out runs/grpo-toy     # about 9 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from omniemo.eval.runner import EvalConfig, run_eval
from omniemo.models.processing import R1OMNI_INSTRUCTION
from omniemo.models.tiny import write_tiny_humanomni
from omniemo.train.config import load_config
from omniemo.train.grpo import train_grpo
from omniemo.train.sft import train_sft
from omniemo.train.toy import TOY_LABELS, write_toy_dataset

REPO = Path(__file__).resolve().parents[1]


def r1omni_json(manifest: Path, out: Path, split: str, reasoning: bool, shuffle_labels: bool, seed: int,
                limit: int | None = None) -> Path:
    """The reference training JSON for one split: reasoning answers (cold start) or the label alone (GRPO)."""
    rows = [json.loads(x) for x in manifest.read_text().splitlines()]
    rows = [r for r in rows if r["split"] == split][:limit]
    labels = [r["label"] for r in rows]
    if shuffle_labels:
        random.Random(seed).shuffle(labels)
    data = []
    for row, label in zip(rows, labels):
        answer = f"<think>The colour and the tone.</think>\n<answer>{label}</answer>" if reasoning else label
        data.append({"video": str(manifest.parent / row["path"]),
                     "conversations": [{"from": "human", "value": f"<video>\n<audio>\n{R1OMNI_INSTRUCTION}"},
                                       {"from": "gpt", "value": answer}]})
    out.write_text(json.dumps(data, indent=1))
    return out


def accuracy(checkpoint: Path, manifest: Path, out: Path, modalities: str) -> float:
    summary = run_eval(EvalConfig(dataset="manifest", root=str(manifest), out_dir=str(out), split="test",
                                  model="humanomni", labels="mer2023", batch_size=8,
                                  model_options={"model_path": str(checkpoint), "device": "cpu",
                                                 "modalities": modalities,
                                                 "max_new_tokens": 40, "score_labels": False}))
    return 100 * summary["scores"]["paper"]["war"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/grpo-toy"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sft-steps", type=int, default=150)
    parser.add_argument("--cold-start-examples", type=int, default=48)
    parser.add_argument("--shuffled-cold-start", action="store_true")
    parser.add_argument("--grpo-steps", type=int, default=150)
    parser.add_argument("--grpo-lr", type=float, default=1e-3)
    parser.add_argument("--grpo-prompts", type=int, default=4, help="Prompts per step (x 8 samples each).")
    parser.add_argument("--grpo-train", default="llm,mm_projector,audio_projector,bert_gate",
                        help="Parts GRPO updates (model.train).")
    parser.add_argument("--modalities", default="video", help="video, audio or video,audio (fewer media tokens learn faster).")
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ckpt = write_tiny_humanomni(out / "tiny", seed=args.seed)
    manifest = write_toy_dataset(out / "toy", n_train=48, n_test=24, seed=args.seed)
    cold = r1omni_json(manifest, out / "cold-start.json", "train", reasoning=True,
                       shuffle_labels=args.shuffled_cold_start, seed=args.seed, limit=args.cold_start_examples)
    rl = r1omni_json(manifest, out / "grpo.json", "train", reasoning=False, shuffle_labels=False, seed=args.seed)
    common = [f"seed={args.seed}", "data.source=r1omni", "data.labels=mer2023", "model.dtype=fp32",
              f"data.modalities=[{args.modalities}]"]

    sft = load_config(REPO / "recipes" / "tiny-sft.yaml", common + [
        f"model.path={ckpt}", f"data.root={cold}", "data.target=conversation", f"output_dir={out / 'sft'}",
        f"optim.max_steps={args.sft_steps}", "optim.lr=3e-3", "optim.per_device_batch_size=4",
        "optim.gradient_accumulation_steps=1", "resume=false"])
    train_sft(sft)
    after_sft = accuracy(out / "sft" / "final", manifest, out / "eval-sft", args.modalities)

    grpo = load_config(REPO / "recipes" / "tiny-grpo.yaml", common + [
        f"model.path={out / 'sft' / 'final'}", f"data.root={rl}", "data.target=label", f"output_dir={out / 'grpo'}",
        f"optim.max_steps={args.grpo_steps}", f"optim.lr={args.grpo_lr}", f"optim.per_device_batch_size={args.grpo_prompts}",
        "optim.gradient_accumulation_steps=1", "grpo.num_generations=8", "grpo.max_completion_length=40",
        "grpo.rewards=[accuracy, format]", "logging_steps=5", "resume=false",
        f"model.train=[{args.grpo_train}]"])
    summary = train_grpo(grpo)
    after_grpo = accuracy(out / "grpo" / "final", manifest, out / "eval-grpo", args.modalities)
    result = {"labels": list(TOY_LABELS), "modalities": args.modalities, "settings": vars(args) | {"out": str(out)}, "chance": 100 / len(TOY_LABELS), "test_clips": 24,
              "accuracy_after_cold_start_sft": round(after_sft, 1), "accuracy_after_grpo": round(after_grpo, 1),
              "grpo_last_step": summary, "seconds": round(time.perf_counter() - start, 1),
              "metrics": str(out / "grpo" / "metrics.csv")}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

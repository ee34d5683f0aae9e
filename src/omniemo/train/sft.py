"""Supervised fine-tuning: the cold start on reasoning samples (EMER-SFT) or label-only targets (MAFW-DFEW-SFT).

Loss is the token cross-entropy on the assistant turn only (the prompt and the media positions are masked).
Run: ``omniemo train sft --config recipes/r1omni-emer-sft.yaml`` (or under ``accelerate launch``).
"""

from __future__ import annotations

import torch

from omniemo.train.config import TrainConfig
from omniemo.train.loop import backward_and_step, decode_batch, end_step, finish_training, start_training, to_device


def sft_loss(model, batch: dict) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over the target tokens, and how many there were."""
    out = model(**batch)
    return out.loss, int((batch["labels"] != -100).sum())


def train_sft(cfg: TrainConfig, stop_after: int | None = None) -> dict:
    """Train; ``stop_after`` ends the run after that many optimizer steps (used to test resuming)."""
    run = start_training(cfg, "sft")
    acc, model, policy = run.accelerator, run.model, run.policy
    last = {}
    for step in range(run.start, run.total):
        losses, tokens, samples_seen = [], 0, 0
        for micro in range(cfg.optim.gradient_accumulation_steps):
            exs = [run.examples[i] for i in run.order.indices(step, micro)]
            samples, _ = decode_batch(exs, policy.num_frames, cfg.data.modalities, run.skips)
            # features are computed outside autocast (the log-mel must stay float32)
            batch = to_device(policy.sft_batch(samples), acc.device) if samples else None
            with acc.accumulate(model), acc.autocast():
                loss = None
                if samples:
                    loss, n = sft_loss(model, batch)
                    losses.append(loss.detach())
                    tokens, samples_seen = tokens + n, samples_seen + len(samples)
                backward_and_step(run, loss)
        run.scheduler.step()
        mean_loss = acc.reduce(torch.stack(losses).mean() if losses else torch.zeros((), device=acc.device), "mean")
        seconds = run.timer.lap()
        last = {"step": step + 1, "epoch": round(run.order.epoch_of(step + 1), 4), "loss": mean_loss.item(),
                "lr": run.scheduler.get_last_lr()[0], "target_tokens": tokens, "step_s": seconds,
                "samples_per_s": samples_seen / seconds, "skipped": run.skips.total}
        if end_step(run, step, last, stop_after):
            return {"stopped_at": step + 1, **last}
    return finish_training(run, last)

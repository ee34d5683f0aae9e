"""Supervised fine-tuning: the cold start on reasoning samples (EMER-SFT) or label-only targets (MAFW-DFEW-SFT).

Loss is the token cross-entropy on the assistant turn only (the prompt and the media positions are masked).
Run: ``omniemo train sft --config recipes/r1omni-emer-sft.yaml`` (or under ``accelerate launch``).
"""

from __future__ import annotations

import torch

from omniemo.train.config import TrainConfig
from omniemo.train.examples import SkipLog, load_examples
from omniemo.train.loop import (DataOrder, MetricsLog, Timer, decode_batch, finish_run, make_accelerator,
                                make_optimizer, make_scheduler, resume_step, save_checkpoint, start_run, to_device,
                                zero_loss)
from omniemo.train.policy import load_policy


def sft_loss(model, batch: dict) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over the target tokens, and how many there were."""
    out = model(**batch)
    return out.loss, int((batch["labels"] != -100).sum())


def train_sft(cfg: TrainConfig, stop_after: int | None = None) -> dict:
    """Train; ``stop_after`` ends the run after that many optimizer steps (used to test resuming)."""
    accelerator = make_accelerator(cfg)
    skips = SkipLog()
    examples = load_examples(cfg.data, skips)
    policy = load_policy(cfg.model)
    order = DataOrder(len(examples), cfg.optim.per_device_batch_size, cfg.optim.gradient_accumulation_steps,
                      accelerator.num_processes, accelerator.process_index, cfg.seed)
    total = order.total_steps(cfg.optim.epochs, cfg.optim.max_steps)
    optimizer = make_optimizer(policy.model, cfg.optim)
    scheduler = make_scheduler(optimizer, cfg.optim, total)
    model, optimizer = accelerator.prepare(policy.model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    start = resume_step(accelerator, cfg)
    start_run(cfg, accelerator, "sft", len(examples), skips)
    log, timer = MetricsLog(cfg, accelerator), Timer()
    last = {}
    for step in range(start, total):
        losses, tokens, samples_seen = [], 0, 0
        for micro in range(cfg.optim.gradient_accumulation_steps):
            exs = [examples[i] for i in order.indices(step, micro)]
            samples, _ = decode_batch(exs, policy.num_frames, cfg.data.modalities, skips)
            with accelerator.accumulate(model), accelerator.autocast():
                if samples:
                    loss, n = sft_loss(model, to_device(policy.sft_batch(samples), accelerator.device))
                    losses.append(loss.detach())
                    tokens, samples_seen = tokens + n, samples_seen + len(samples)
                else:
                    loss = zero_loss(model)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.optim.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.optim.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
        scheduler.step()
        mean_loss = accelerator.reduce(torch.stack(losses).mean() if losses else torch.zeros((), device=accelerator.device),
                                       "mean").item()
        seconds = timer.lap()
        last = {"step": step + 1, "epoch": round(order.epoch_of(step + 1), 4), "loss": mean_loss,
                "lr": scheduler.get_last_lr()[0], "target_tokens": tokens, "samples_per_s": samples_seen / seconds,
                "skipped": skips.total}
        if (step + 1) % cfg.logging_steps == 0 or step + 1 == total:
            log.log(last)
        if cfg.save_steps and (step + 1) % cfg.save_steps == 0:
            save_checkpoint(accelerator, cfg, step + 1)
        if stop_after is not None and step + 1 - start >= stop_after:
            save_checkpoint(accelerator, cfg, step + 1)
            return {"stopped_at": step + 1, **last}
    summary = {**last, "steps": total, "examples": len(examples), "skipped": dict(skips.counts)}
    finish_run(cfg, accelerator, policy, model, summary)
    return summary

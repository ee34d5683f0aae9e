"""The machinery both recipes share: accelerate setup, optimizer and schedule, the data order, checkpoints
with exact resume, metrics logs. No trainer class: the recipes' loops call these and stay readable.

Data order is a pure function of (seed, step): each epoch is a seeded permutation, and optimizer step ``s``,
micro-step ``m`` on process ``r`` reads a fixed slice of it. Resuming therefore needs only the step number, and
``accelerator.save_state`` keeps the model, optimizer, schedule and every process's RNG states.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from omniemo import files
from omniemo.models.processing import load_media_sample
from omniemo.train.config import OptimConfig, TrainConfig
from omniemo.train.examples import Example, SkipLog, load_examples


def make_accelerator(cfg: TrainConfig):
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    # unused parameters are normal here: a batch without video leaves the visual projector idle
    # cpu=True without CUDA: processes started by torchrun/accelerate launch then join over gloo (MULTI_CPU)
    accelerator = Accelerator(cpu=not torch.cuda.is_available(),
                              gradient_accumulation_steps=cfg.optim.gradient_accumulation_steps,
                              mixed_precision=cfg.mixed_precision,
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    set_seed(cfg.seed)
    return accelerator


def make_optimizer(model, optim: OptimConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: model.train selects no parameters")
    return torch.optim.AdamW(params, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay)


def make_scheduler(optimizer, optim: OptimConfig, total_steps: int):
    warmup = int(round(optim.warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total_steps - warmup)
        if optim.scheduler == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        if optim.scheduler == "linear":
            return max(0.0, 1 - progress)
        if optim.scheduler == "constant":
            return 1.0
        raise ValueError(f"unknown scheduler {optim.scheduler!r}: cosine, linear or constant")

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class DataOrder:
    """Which examples each process reads at (step, micro-step): seeded per epoch, a function of the step only."""

    def __init__(self, n_examples: int, per_device: int, accumulation: int, processes: int, rank: int, seed: int):
        self.n, self.per_device, self.accumulation = n_examples, per_device, accumulation
        self.processes, self.rank, self.seed = processes, rank, seed
        self.micro_per_epoch = n_examples // (per_device * processes)
        if self.micro_per_epoch == 0:
            raise ValueError(f"{n_examples} usable examples: fewer than one global batch "
                             f"({per_device} x {processes} processes)")

    def total_steps(self, epochs: float, max_steps: int | None) -> int:
        return max_steps or max(1, int(math.ceil(epochs * self.micro_per_epoch / self.accumulation)))

    def indices(self, step: int, micro: int) -> list[int]:
        g = step * self.accumulation + micro
        epoch, offset = divmod(g, self.micro_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        start = (offset * self.processes + self.rank) * self.per_device
        return order[start:start + self.per_device].tolist()

    def epoch_of(self, step: int) -> float:
        return step * self.accumulation / self.micro_per_epoch


def decode_batch(examples: list[Example], num_frames: int, modalities, skips: SkipLog):
    """MediaSamples for the examples that decode; the others are counted in ``skips`` and left out."""
    from omniemo.media.errors import MediaError

    samples, kept = [], []
    for ex in examples:
        try:
            samples.append(load_media_sample(ex.path, ex.instruction, num_frames, tuple(modalities), ex.target)[0])
            kept.append(ex)
        except (MediaError, OSError, ValueError) as exc:
            skips.add("unreadable media files", f"{ex.path} ({exc})"[:160])
    return samples, kept


def to_device(batch: dict, device) -> dict:
    return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}


def zero_loss(model) -> torch.Tensor:
    """A zero that touches every trainable parameter: keeps processes in step when a micro-batch is all bad."""
    return sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0


# -- checkpoints ----------------------------------------------------------------------------------------------------

def checkpoint_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.output_dir) / "checkpoints"


def save_checkpoint(accelerator, cfg: TrainConfig, step: int, extra: dict | None = None) -> Path:
    """accelerate state (model, optimizer, schedule, RNG of every process) + the step, then point 'latest' at it."""
    root = checkpoint_dir(cfg)
    path = root / f"step-{step:07d}"
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        files.write_text(path / "trainer_state.json", json.dumps({"step": step, **(extra or {})}, indent=2))
        files.write_text(root / "latest", path.name)
    accelerator.wait_for_everyone()
    return path


def resume_step(accelerator, cfg: TrainConfig) -> int:
    """Load the latest checkpoint when ``cfg.resume`` and one exists; the step to continue from (0: fresh)."""
    pointer = checkpoint_dir(cfg) / "latest"
    if not (cfg.resume and pointer.is_file()):
        return 0
    path = checkpoint_dir(cfg) / pointer.read_text().strip()
    accelerator.load_state(str(path))
    return json.loads((path / "trainer_state.json").read_text())["step"]


# -- logs -------------------------------------------------------------------------------------------------------------

class MetricsLog:
    """metrics.csv (always, main process), TensorBoard too when asked for and installed; a line to stderr."""

    def __init__(self, cfg: TrainConfig, accelerator):
        self.main = accelerator.is_main_process
        self.path = Path(cfg.output_dir) / "metrics.csv"
        self.writer = None
        if self.main and "tensorboard" in cfg.log_with:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(Path(cfg.output_dir) / "tensorboard"))
            except ImportError:
                print("tensorboard is not installed: logging to metrics.csv only", file=sys.stderr)

    def log(self, row: dict) -> None:
        if not self.main:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self.writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, row["step"])
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
              file=sys.stderr)


class Timer:
    def __init__(self):
        self.start = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        elapsed, self.start = now - self.start, now
        return elapsed


# -- a run's beginning and each step's end, shared by the recipes ----------------------------------------------

@dataclass
class Run:
    cfg: TrainConfig
    accelerator: object
    policy: object
    model: object  # the prepared (possibly wrapped) model
    optimizer: object
    scheduler: object
    order: DataOrder
    examples: list[Example]
    skips: SkipLog
    total: int  # optimizer steps
    start: int  # first step to run (after a resume)
    log: MetricsLog
    timer: Timer


def start_training(cfg: TrainConfig, kind: str, adapt: Callable | None = None,
                   on_prepared: Callable[[Run], None] | None = None) -> Run:
    """Examples, policy, optimizer and schedule, accelerate, then the resume. ``adapt(policy)`` runs before the
    optimizer is made; ``on_prepared(run)`` after accelerate's prepare and before loading a checkpoint (GRPO
    copies its reference model there: the reference is the starting model, also after a resume)."""
    from omniemo.train.policy import load_policy

    accelerator = make_accelerator(cfg)
    skips = SkipLog()
    examples = load_examples(cfg.data, skips)
    policy = load_policy(cfg.model)
    if adapt is not None:
        adapt(policy)
    order = DataOrder(len(examples), cfg.optim.per_device_batch_size, cfg.optim.gradient_accumulation_steps,
                      accelerator.num_processes, accelerator.process_index, cfg.seed)
    total = order.total_steps(cfg.optim.epochs, cfg.optim.max_steps)
    optimizer = make_optimizer(policy.model, cfg.optim)
    scheduler = make_scheduler(optimizer, cfg.optim, total)
    model, optimizer = accelerator.prepare(policy.model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    run = Run(cfg, accelerator, policy, model, optimizer, scheduler, order, examples, skips, total, 0,
              MetricsLog(cfg, accelerator), Timer())
    if on_prepared is not None:
        on_prepared(run)
    run.start = resume_step(accelerator, cfg)
    if accelerator.is_main_process:
        out = Path(cfg.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        files.write_text(out / "config.json", json.dumps({"recipe": kind, **cfg.to_dict()}, indent=2, default=str))
        note = f" (skipped {skips.total}: {skips.summary()})" if skips.total else ""
        print(f"{kind}: {len(examples)} examples{note}; {accelerator.num_processes} process(es) on "
              f"{accelerator.device}", file=sys.stderr)
    run.timer.lap()
    return run


def backward_and_step(run: Run, loss: torch.Tensor | None) -> None:
    """Inside ``accelerator.accumulate``: backward (a zero touching every trainable weight when the micro-batch
    had nothing usable, so processes stay in step), clipping at a sync step, then the optimizer step, which
    accelerate skips between accumulation steps."""
    acc = run.accelerator
    acc.backward(loss if loss is not None else zero_loss(run.model))
    if acc.sync_gradients and run.cfg.optim.max_grad_norm:
        acc.clip_grad_norm_(run.model.parameters(), run.cfg.optim.max_grad_norm)
    run.optimizer.step()
    run.optimizer.zero_grad()


def end_step(run: Run, step: int, row: dict, stop_after: int | None) -> bool:
    """Log the step's row, save on schedule; True when the run stops here (``stop_after`` steps done)."""
    done = step + 1
    if done % run.cfg.logging_steps == 0 or done == run.total:
        run.log.log(row)
    if stop_after is not None and done - run.start >= stop_after:
        save_checkpoint(run.accelerator, run.cfg, done)
        return True
    if run.cfg.save_steps and done % run.cfg.save_steps == 0:
        save_checkpoint(run.accelerator, run.cfg, done)
    return False


def finish_training(run: Run, last: dict) -> dict:
    """Write ``final/`` (a checkpoint `omniemo analyze --backend ... --model-path` loads) and ``summary.json``."""
    summary = {**last, "steps": run.total, "examples": len(run.examples), "skipped": dict(run.skips.counts)}
    out = Path(run.cfg.output_dir)
    run.accelerator.wait_for_everyone()
    if run.accelerator.is_main_process:
        final = out / "final"
        if final.exists():
            shutil.rmtree(final)
        run.policy.save(run.accelerator.unwrap_model(run.model), final)
        files.write_text(out / "summary.json", json.dumps(summary, indent=2))
    run.accelerator.wait_for_everyone()
    return summary

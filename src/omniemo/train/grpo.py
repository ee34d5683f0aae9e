"""GRPO with verifiable rewards, as R1-Omni trained it (R1-OMNI.md), for video + audio + text prompts.

Per prompt: G sampled completions (temperature, top-k; media placeholder tokens never sampled), rewards from
plain functions, group-normalised advantages A = (r - mean) / (std + 1e-4), and the per-token loss
-(A * ratio - beta * KL) with ratio = exp(logp - logp.detach()) (one update per batch) and the k3 estimator
KL = exp(ref - logp) - (ref - logp) - 1 against a frozen copy of the starting model, averaged over each
completion's tokens up to and including its first EOS, then over the batch.
Run: ``omniemo train grpo --config recipes/r1omni-grpo.yaml`` (or under ``accelerate launch``).
"""

from __future__ import annotations

import copy

import torch

from omniemo.train.config import TrainConfig
from omniemo.train.loop import backward_and_step, decode_batch, end_step, finish_training, start_training, to_device
from omniemo.train.policy import Policy
from omniemo.train.rewards import get_reward

ADVANTAGE_EPS = 1e-4


# -- the math ---------------------------------------------------------------------------------------------------

def group_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(r - group mean) / (group std + 1e-4) for rewards laid out prompt by prompt, G each (std unbiased, as TRL)."""
    grouped = rewards.view(-1, group_size)
    mean, std = grouped.mean(1, keepdim=True), grouped.std(1, keepdim=True)
    return ((grouped - mean) / (std + ADVANTAGE_EPS)).view(-1)


def completion_mask(ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 for each token up to and including the first EOS (all tokens when there is none), else 0."""
    is_eos = ids == eos_id
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.full_like(ids[:, 0], ids.shape[1]))
    return (torch.arange(ids.shape[1], device=ids.device)[None] <= first[:, None]).long()


def token_logps(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """log p(ids) per position, (B, L), in float32."""
    return torch.log_softmax(logits.float(), -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)


def grpo_loss(logp: torch.Tensor, ref_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
              beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss, and the mean per-token KL (for the log)."""
    delta = ref_logp - logp
    kl = torch.exp(delta) - delta - 1
    ratio = torch.exp(logp - logp.detach())  # 1, with the policy gradient's derivative
    per_token = -(ratio * advantages[:, None] - beta * kl)
    mask = mask.to(per_token.dtype)
    lengths = mask.sum(1).clamp(min=1)
    loss = ((per_token * mask).sum(1) / lengths).mean()
    mean_kl = ((kl * mask).sum(1) / lengths).mean()
    return loss, mean_kl


def score_completions(completions: list[str], columns: dict[str, list], reward_names: list[str],
                      weights: list[float] | None) -> tuple[torch.Tensor, dict[str, list[float]]]:
    """Each reward function's scores and their weighted sum."""
    weights = weights or [1.0] * len(reward_names)
    if len(weights) != len(reward_names):
        raise ValueError(f"{len(weights)} reward weights for {len(reward_names)} rewards")
    per = {name: [float(x) for x in get_reward(name)(completions, **columns)] for name in reward_names}
    total = sum(w * torch.tensor(per[n]) for n, w in zip(reward_names, weights))
    return total, per


# -- the recipe -------------------------------------------------------------------------------------------------

def disable_dropout(model) -> None:
    """No dropout in the policy (BERT has some): the sampled, scored and reference passes see one function."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def reference_model(policy: Policy):
    """A frozen copy of the starting model (sharing the frozen towers); None under LoRA (adapters off instead)."""
    if hasattr(policy.model, "disable_adapter"):
        return None
    core = policy.core_of(policy.model)
    towers = getattr(core, "towers", {})
    memo = {id(t): t for t in towers.values() if t is not None}
    ref = copy.deepcopy(policy.model, memo)
    ref.requires_grad_(False)
    return ref.eval()


@torch.no_grad()
def reference_logps(policy: Policy, model, ref, batch, completion, mask) -> torch.Tensor:
    if ref is None:  # LoRA: the base model is the reference
        with model.disable_adapter() if hasattr(model, "disable_adapter") else policy.core_of(model).disable_adapter():
            return token_logps(policy.completion_logits(model, batch, completion, mask), completion)
    return token_logps(policy.completion_logits(ref, batch, completion, mask), completion)


def train_grpo(cfg: TrainConfig, stop_after: int | None = None) -> dict:
    """Train; ``stop_after`` ends the run after that many optimizer steps (used to test resuming)."""
    g = cfg.grpo
    holder = {}

    def make_reference(run):
        ref = reference_model(run.policy)
        holder["ref"] = run.accelerator.prepare_model(ref, evaluation_mode=True) if ref is not None else None

    run = start_training(cfg, "grpo", adapt=lambda policy: disable_dropout(policy.model), on_prepared=make_reference)
    acc, model, policy, ref = run.accelerator, run.model, run.policy, holder["ref"]
    tok = policy.tokenizer
    generation = {"do_sample": True, "temperature": g.temperature, "top_k": g.top_k,
                  "max_new_tokens": g.max_completion_length, "suppress_tokens": policy.suppress_token_ids,
                  "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id}
    keys = ["loss", "kl", "reward", "completion_length"] + [f"reward/{n}" for n in g.rewards]
    last = {}
    for step in range(run.start, run.total):
        stats: dict[str, list[float]] = {}
        n_samples = 0
        for micro in range(cfg.optim.gradient_accumulation_steps):
            exs = [run.examples[i] for i in run.order.indices(step, micro)]
            samples, kept = decode_batch(exs, policy.num_frames, cfg.data.modalities, run.skips)
            prompts = [s for s in samples for _ in range(g.num_generations)]
            if prompts:
                # 1. sample G completions per prompt with the current policy
                batch = to_device(policy.group_batch(samples, g.num_generations), acc.device)
                model.eval()
                with torch.no_grad(), acc.autocast():
                    completion = policy.generate(acc.unwrap_model(model), batch, **generation)
                model.train()
                mask = completion_mask(completion, tok.eos_token_id)
                texts = tok.batch_decode(completion * mask + tok.pad_token_id * (1 - mask), skip_special_tokens=True)
                # 2. rewards and group-normalised advantages; the reference's log-probabilities
                columns = {"solution": [e.solution for e in kept for _ in range(g.num_generations)],
                           "labels": [e.labels for e in kept for _ in range(g.num_generations)],
                           "evidence": [e.evidence for e in kept for _ in range(g.num_generations)]}
                rewards, per = score_completions(texts, columns, g.rewards, g.reward_weights)
                advantages = group_advantages(rewards, g.num_generations).to(acc.device)
                with acc.autocast():
                    ref_logp = reference_logps(policy, model, ref, batch, completion, mask)
                for name, values in per.items():
                    stats.setdefault(f"reward/{name}", []).extend(values)
                stats.setdefault("reward", []).extend(rewards.tolist())
                stats.setdefault("completion_length", []).extend(mask.sum(1).float().tolist())
                n_samples += len(texts)
            # 3. one policy-gradient update on the batch
            with acc.accumulate(model), acc.autocast():
                loss = None
                if prompts:
                    logits = policy.completion_logits(model, batch, completion, mask)
                    loss, kl = grpo_loss(token_logps(logits, completion), ref_logp, advantages, mask, g.beta)
                    stats.setdefault("loss", []).append(loss.item())
                    stats.setdefault("kl", []).append(kl.item())
                backward_and_step(run, loss)
        run.scheduler.step()
        seconds = run.timer.lap()
        means = {k: _global_mean(acc, stats.get(k, [])) for k in keys}  # the same keys on every process
        last = {"step": step + 1, "epoch": round(run.order.epoch_of(step + 1), 4), "loss": means["loss"],
                "kl": means["kl"], "reward": means["reward"],
                "accuracy": next((means[f"reward/{n}"] for n in g.rewards if n.startswith("accuracy")), None),
                "format_rate": means.get("reward/format"), "completion_length": means["completion_length"],
                **{k: v for k, v in means.items() if k.startswith("reward/")},
                "lr": run.scheduler.get_last_lr()[0], "step_s": seconds, "samples_per_s": n_samples / seconds,
                "skipped": run.skips.total}
        if end_step(run, step, last, stop_after):
            return {"stopped_at": step + 1, **last}
    return finish_training(run, last)


def _global_mean(accelerator, values: list[float]) -> float:
    """Mean over every process's values (each process may have a different count)."""
    t = torch.tensor([sum(values), len(values)], dtype=torch.float64, device=accelerator.device)
    t = accelerator.reduce(t, "sum")
    return float(t[0] / t[1]) if t[1] else 0.0

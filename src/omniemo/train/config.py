"""Training configuration: dataclasses with documented defaults, read from small YAML recipes.

A recipe has the sections ``model``, ``data``, ``optim`` and (for GRPO) ``grpo``, plus top-level ``output_dir``,
``seed``, ``save_steps``, ``logging_steps``, ``mixed_precision``. Unknown keys are errors, so a typo never trains
silently with a default. ``recipes/`` holds the paper's recipes and tiny CPU ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # LLM linear layers; the projectors and BERT gate stay fully trainable if listed in ModelConfig.train
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                               "gate_proj", "up_proj", "down_proj"])


@dataclass
class ModelConfig:
    backend: str = "humanomni"  # humanomni | qwen-omni
    path: str = ""  # checkpoint folder
    vision_tower: str | None = None  # humanomni: folders, else $OMNIEMO_* or the config's values
    audio_tower: str | None = None
    bert: str | None = None
    dtype: str = "fp32"  # weights' dtype when loaded; mixed_precision decides the compute dtype
    # parts that learn; the towers are always frozen. humanomni: llm, mm_projector, audio_projector, bert_gate,
    # bert_model. qwen-omni: llm, audio_tower, visual.
    train: list[str] = field(default_factory=lambda: ["llm", "mm_projector", "audio_projector", "bert_gate"])
    lora: LoraSettings | None = None
    gradient_checkpointing: bool = False


@dataclass
class DataConfig:
    source: str = "r1omni"  # r1omni (the reference JSON) or any dataset adapter: manifest, mafw, dfew, ravdess ...
    root: str = ""
    split: str | None = None
    labels: str | None = None  # label set of the answers (default: the adapter's)
    # targets: "conversation" (the gpt turn of r1omni JSON: reasoning for the cold start), "label" (the label
    # word alone: the MAFW-DFEW-SFT baseline and the GRPO solution column)
    target: str = "conversation"
    instruction: str | None = None  # default: the JSON's human turn, else R1-Omni's prompt
    modalities: list[str] = field(default_factory=lambda: ["video", "audio"])
    evidence_dir: str | None = None  # {stem}.json evidence records (omniemo cues --out) for the grounding reward
    limit: int | None = None


@dataclass
class OptimConfig:
    lr: float = 2e-5
    epochs: float = 1.0
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    per_device_batch_size: int = 1  # prompts per process per micro-step
    gradient_accumulation_steps: int = 1
    scheduler: str = "cosine"  # cosine | linear | constant
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class GRPOSettings:
    """Defaults are R1-Omni's (R1-OMNI.md)."""

    num_generations: int = 8  # G samples per prompt
    temperature: float = 1.0
    top_k: int = 50
    max_completion_length: int = 512
    max_prompt_length: int = 512  # text tokens of the prompt (media placeholders not counted)
    beta: float = 0.04  # KL weight (k3 estimator against the frozen starting model)
    rewards: list[str] = field(default_factory=lambda: ["accuracy", "format"])
    reward_weights: list[float] | None = None  # default 1 each: R = R_acc + R_format


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
    output_dir: str = "runs/train"
    seed: int = 0
    save_steps: int = 0  # 0: only at the end
    logging_steps: int = 1
    mixed_precision: str = "no"  # no | bf16 | fp16 (accelerate's autocast)
    log_with: list[str] = field(default_factory=lambda: ["csv"])  # csv, tensorboard
    resume: bool = True  # continue from output_dir/checkpoints/latest when present

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(cls, values: dict | None, where: str):
    values = dict(values or {})
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    out = {}
    for name, value in values.items():
        default = known[name].default_factory() if callable(known[name].default_factory) else known[name].default
        if is_dataclass(default) and isinstance(value, dict):
            value = _build(type(default), value, f"{where}.{name}")
        elif name == "lora" and isinstance(value, dict):
            value = _build(LoraSettings, value, f"{where}.lora")
        elif name == "betas" and value is not None:
            value = tuple(value)
        elif isinstance(default, float) and isinstance(value, (str, int)) and not isinstance(value, bool):
            value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        out[name] = value
    return cls(**out)


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """A recipe file, then ``section.key=value`` overrides (values parsed as YAML: numbers, lists, null)."""
    raw = yaml.safe_load(Path(path).read_text()) if path else {}
    raw = raw or {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r}: expected section.key=value")
        target = raw
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = yaml.safe_load(value)
    return _build(TrainConfig, raw, str(path or "config"))

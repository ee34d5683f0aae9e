"""What training needs from an omni model, for each backend: batches, generation, completion logits, saving.

The recipes (``sft.py``, ``grpo.py``) only talk to a Policy, so HumanOmni and the Qwen2.5-Omni thinker train
with the same loop. ``model`` arguments are the (possibly accelerate-wrapped) module to run; ``core`` is the
unwrapped model, for generation and saving.
"""

from __future__ import annotations

from pathlib import Path

import torch

from omniemo.models.processing import MediaSample
from omniemo.train.config import ModelConfig

IGNORE = -100


def _suffix_batch(batch: dict, suffixes: list[list[int]]) -> dict:
    """Labels for a left-padded batch whose rows end with ``suffixes``: loss on the suffix tokens only."""
    labels = torch.full_like(batch["input_ids"], IGNORE)
    for i, suffix in enumerate(suffixes):
        if suffix:
            labels[i, -len(suffix):] = torch.tensor(suffix)
    return {**batch, "labels": labels}


class Policy:
    backend = ""
    PARTS: dict[str, tuple[str, ...]] = {}
    LLM_LINEAR = ""  # regex of the LLM's linear layers, for LoRA

    def __init__(self, model, processor):
        self.model, self.processor = model, processor

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def num_frames(self) -> int:
        return self.processor.num_frames

    # -- trainable parts ----------------------------------------------------------------------------------------
    def select_trainable(self, parts: list[str], lora=None):
        """Freeze everything, then unfreeze ``parts`` (the LLM through LoRA adapters when ``lora`` is set)."""
        unknown = [p for p in parts if p not in self.PARTS]
        if unknown:
            raise ValueError(f"{self.backend}: unknown trainable part(s) {unknown}; known: {sorted(self.PARTS)}")
        model = self.model
        model.requires_grad_(False)
        if lora is not None:
            from peft import LoraConfig, get_peft_model

            pattern = self.LLM_LINEAR.format("|".join(lora.target_modules))
            model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                     target_modules=pattern))  # adapters trainable, base frozen
        prefixes = tuple(p for part in parts if not (lora is not None and part == "llm") for p in self.PARTS[part])
        for name, param in self.core_of(model).named_parameters():
            if name.startswith(prefixes):
                param.requires_grad_(True)
        self.model = model
        return model

    @staticmethod
    def core_of(model):
        """The backend's own model under accelerate and peft wrappers."""
        while hasattr(model, "module"):
            model = model.module
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    # -- batches --------------------------------------------------------------------------------------------------
    def prompt_batch(self, samples: list[MediaSample]) -> dict:
        raise NotImplementedError

    def sft_batch(self, samples: list[MediaSample]) -> dict:
        raise NotImplementedError

    def group_batch(self, samples: list[MediaSample], group: int) -> dict:
        """The prompt batch with each sample ``group`` times in a row (GRPO's G samples per prompt)."""
        return self.prompt_batch([s for s in samples for _ in range(group)])

    def generate(self, core, batch: dict, **generation) -> torch.Tensor:
        """Completion token ids (B, L), pad after the end."""
        raise NotImplementedError

    def completion_logits(self, model, batch: dict, completion: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, V) that predict each completion token, from one forward of prompt + completion."""
        raise NotImplementedError

    def save(self, model, out_dir: str | Path) -> Path:
        raise NotImplementedError

    @property
    def suppress_token_ids(self) -> list[int]:
        return self.processor.suppress_token_ids


class HumanOmniPolicy(Policy):
    backend = "humanomni"
    PARTS = {"llm": ("model.embed_tokens.", "model.layers.", "model.norm.", "lm_head."),
             "mm_projector": ("model.mm_projector.",), "audio_projector": ("model.audio_projector.",),
             "bert_gate": ("model.bert_gate.",), "bert_model": ("model.bert_model.",)}
    LLM_LINEAR = r".*model\.layers\.\d+\.(self_attn|mlp)\.({})"

    def prompt_batch(self, samples):
        return self.processor(samples)

    def sft_batch(self, samples):
        return self.processor(samples, with_targets=True)

    def group_batch(self, samples, group):
        # preprocess each clip once, then repeat its rows: every tensor here is per sample (or per sample with
        # that modality, in batch order), so repeating each row in place keeps them aligned
        batch = self.processor(samples)
        return {k: (v.repeat_interleave(group, dim=0) if torch.is_tensor(v) else v) for k, v in batch.items()}

    def generate(self, core, batch, **generation):
        return core.generate_from_media(**batch, **generation)

    def completion_logits(self, model, batch, completion, mask):
        ids = torch.cat([batch["input_ids"], completion], dim=1)
        attention = torch.cat([batch["attention_mask"], mask.to(batch["attention_mask"].dtype)], dim=1)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)  # left padding: positions as in generation
        out = model(input_ids=ids, attention_mask=attention, position_ids=positions,
                    pixel_values=batch["pixel_values"], input_features=batch["input_features"],
                    bert_input_ids=batch["bert_input_ids"], bert_attention_mask=batch["bert_attention_mask"],
                    logits_to_keep=completion.shape[1] + 1)
        return out.logits[:, :-1]

    def save(self, model, out_dir):
        from omniemo.models.loading import save_humanomni

        core = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
        return save_humanomni(core, self.processor, out_dir)


class QwenOmniPolicy(Policy):
    backend = "qwen-omni"
    PARTS = {"llm": ("model.language_model.", "lm_head."), "audio_tower": ("model.audio_tower.",),
             "visual": ("model.visual.",)}
    LLM_LINEAR = r".*language_model\.layers\.\d+\.(self_attn|mlp)\.({})"

    def prompt_batch(self, samples):
        return self.processor(samples)

    def sft_batch(self, samples):
        eos = self.tokenizer.eos_token
        suffixes = [self.tokenizer.encode(s.target + eos, add_special_tokens=False) for s in samples]
        return _suffix_batch(self.processor(samples, suffixes=suffixes), suffixes)

    def generate(self, core, batch, **generation):
        out = core.generate(**batch, **generation)
        return out[:, batch["input_ids"].shape[1]:]

    def completion_logits(self, model, batch, completion, mask):
        ids = torch.cat([batch["input_ids"], completion], dim=1)
        attention = torch.cat([batch["attention_mask"], mask.to(batch["attention_mask"].dtype)], dim=1)
        out = model(**{**batch, "input_ids": ids, "attention_mask": attention})
        return out.logits[:, batch["input_ids"].shape[1] - 1:-1]

    def save(self, model, out_dir):
        from omniemo.models.qwen_omni import save_qwen_omni

        core = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
        return save_qwen_omni(core, self.processor, out_dir)


def load_policy(cfg: ModelConfig) -> Policy:
    """Load the checkpoint on the CPU (accelerate moves it), then choose what learns."""
    from omniemo.models.loading import resolve_dtype

    dtype = resolve_dtype(cfg.dtype, "cpu")
    if cfg.backend == "humanomni":
        from omniemo.models.loading import load_humanomni

        model, processor = load_humanomni(cfg.path, vision_tower=cfg.vision_tower, audio_tower=cfg.audio_tower,
                                          bert=cfg.bert, device="cpu", dtype=dtype)
        policy = HumanOmniPolicy(model, processor)
    elif cfg.backend == "qwen-omni":
        from omniemo.models.qwen_omni import load_qwen_omni

        model, processor = load_qwen_omni(cfg.path, device="cpu", dtype=dtype)
        policy = QwenOmniPolicy(model, processor)
    else:
        raise ValueError(f"unknown backend {cfg.backend!r}: humanomni or qwen-omni")
    model.train()
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    policy.select_trainable(list(cfg.train), cfg.lora)
    return policy


def trainable_names(model) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]

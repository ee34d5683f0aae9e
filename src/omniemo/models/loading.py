"""Load and save HumanOmni checkpoints laid out like the published ones, with no edited files.

A published folder (HumanOmni-0.5B, EMER-SFT, R1-Omni-0.5B ...) holds ``config.json`` (model_type
"HumanOmni_qwen2", ``mm_vision_tower``, ``mm_audio_tower``, ``num_frames`` ...), the Qwen2 tokenizer and
``model.safetensors`` (or shards with ``model.safetensors.index.json``) with the LLM, projectors and BERT gate.
The SigLIP tower, the Whisper tower and bert-base-uncased (its config and tokenizer) live in their own folders.
Each is found, in order, from: the option given here; the environment (``OMNIEMO_VISION_TOWER``,
``OMNIEMO_AUDIO_TOWER``, ``OMNIEMO_BERT``); the config value when it is a folder (absolute or inside the
checkpoint); the local Hugging Face cache for a repo id (never the network).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from omniemo.models.humanomni import MODEL_TYPE, HumanOmniConfig, HumanOmniForCausalLM
from omniemo.models.processing import HumanOmniProcessor

ENV = {"vision": "OMNIEMO_VISION_TOWER", "audio": "OMNIEMO_AUDIO_TOWER", "bert": "OMNIEMO_BERT"}
CONFIG_KEY = {"vision": "mm_vision_tower", "audio": "mm_audio_tower", "bert": "bert_model"}
DEFAULT_ID = {"vision": "google/siglip-base-patch16-224", "audio": "openai/whisper-large-v3",
              "bert": "bert-base-uncased"}


class CheckpointError(RuntimeError):
    """A checkpoint folder or one of its parts cannot be used; the message says which and how to fix it."""


def resolve_component(kind: str, checkpoint: Path, config: dict, option: str | Path | None = None) -> Path:
    """The folder of the ``kind`` ("vision", "audio", "bert") component, or a CheckpointError saying how to give it."""
    tried = []
    candidates = [("option", option), (ENV[kind], os.environ.get(ENV[kind])),
                  (f"config {CONFIG_KEY[kind]}", config.get(CONFIG_KEY[kind]) or DEFAULT_ID[kind])]
    for source, value in candidates:
        if not value:
            continue
        for path in (Path(value).expanduser(), checkpoint / str(value)):
            if (path / "config.json").is_file():
                return path
        tried.append(f"{source}={value}")
    repo_id = config.get(CONFIG_KEY[kind]) or DEFAULT_ID[kind]
    cached = _cached_snapshot(str(repo_id))
    if cached is not None:
        return cached
    flag = {"vision": "--vision-tower", "audio": "--audio-tower", "bert": "--bert"}[kind]
    raise CheckpointError(
        f"{checkpoint}: no {kind} {'tower' if kind != 'bert' else 'model'} folder found (tried {', '.join(tried)}); "
        f"download {DEFAULT_ID[kind]} and pass {flag} DIR or set {ENV[kind]}=DIR")


def _cached_snapshot(repo_id: str) -> Path | None:
    if repo_id.count("/") != 1:
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))  # the local cache only: no network
    except Exception:
        return None


def read_config(checkpoint: Path) -> dict:
    path = checkpoint / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{checkpoint}: no config.json (is this a HumanOmni checkpoint folder?)")
    config = json.loads(path.read_text())
    if config.get("model_type") != MODEL_TYPE:
        raise CheckpointError(f"{checkpoint}: model_type is {config.get('model_type')!r}, expected {MODEL_TYPE!r}")
    return config


def read_state_dict(checkpoint: Path) -> dict[str, torch.Tensor]:
    """``model.safetensors``, or every shard named in ``model.safetensors.index.json``."""
    from safetensors.torch import load_file

    single, index = checkpoint / "model.safetensors", checkpoint / "model.safetensors.index.json"
    if single.is_file():
        return load_file(single)
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(load_file(checkpoint / shard))
        return state
    raise CheckpointError(f"{checkpoint}: no model.safetensors or model.safetensors.index.json")


def load_humanomni(path: str | Path, *, vision_tower: str | Path | None = None, audio_tower: str | Path | None = None,
                   bert: str | Path | None = None, device: str | None = None, dtype: str | torch.dtype | None = None,
                   modalities: tuple[str, ...] = ("video", "audio")) -> tuple[HumanOmniForCausalLM, HumanOmniProcessor]:
    """Model and processor from a checkpoint folder. Towers of modalities not in ``modalities`` are not loaded."""
    from transformers import (AutoTokenizer, BertTokenizer, SiglipVisionModel, WhisperFeatureExtractor,
                              WhisperForAudioClassification)

    checkpoint = Path(path).expanduser()
    raw = read_config(checkpoint)
    quiet_transformers()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = resolve_dtype(dtype, device)
    bert_dir = resolve_component("bert", checkpoint, raw, bert)
    bert_config = json.loads((bert_dir / "config.json").read_text())
    config = HumanOmniConfig.from_dict(raw)
    config.bert_config = {k: v for k, v in bert_config.items() if k not in ("architectures", "transformers_version")}

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    bert_tokenizer = BertTokenizer.from_pretrained(bert_dir)
    vision = audio = None
    image_size, feature_extractor = 224, None
    if "video" in modalities:
        vision_dir = resolve_component("vision", checkpoint, raw, vision_tower)
        vision = SiglipVisionModel.from_pretrained(vision_dir, dtype=dtype)
        image_size = vision.config.image_size
    if "audio" in modalities:
        audio_dir = resolve_component("audio", checkpoint, raw, audio_tower)
        audio = WhisperForAudioClassification.from_pretrained(audio_dir, dtype=dtype).encoder
        if (audio_dir / "preprocessor_config.json").is_file():
            feature_extractor = WhisperFeatureExtractor.from_pretrained(audio_dir)
        else:
            feature_extractor = WhisperFeatureExtractor(feature_size=audio.config.num_mel_bins)
    patches = (image_size // 16) ** 2 if vision is None else (image_size // vision.config.patch_size) ** 2
    side = int(round(patches ** 0.5))
    processor = HumanOmniProcessor(tokenizer, bert_tokenizer, feature_extractor, num_frames=config.num_frames,
                                   image_size=image_size, video_tokens_per_frame=((side + 1) // 2) ** 2,
                                   audio_tokens=audio.config.max_source_positions // 3 if audio is not None else 500)
    config.video_token_id, config.audio_token_id = processor.video_token_id, processor.audio_token_id
    # record where the parts were found, so a checkpoint saved from this model loads without options
    config.bert_model = str(bert_dir.resolve())
    if vision is not None:
        config.mm_vision_tower = str(vision_dir.resolve())
    if audio is not None:
        config.mm_audio_tower = str(audio_dir.resolve())

    model = HumanOmniForCausalLM(config)
    state = read_state_dict(checkpoint)
    if "lm_head.weight" not in state and config.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    # tower weights inside an omni checkpoint are ignored: the towers come from their own folders
    state = {k: v for k, v in state.items() if not k.startswith(HumanOmniForCausalLM.TOWER_PREFIXES)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{checkpoint}: weights do not match the HumanOmni architecture: "
                              f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                              f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    if config.tie_word_embeddings:
        model.tie_weights()
    model.attach_towers(vision, audio)
    model.to(device=device, dtype=dtype).eval()
    return model, processor


def quiet_transformers() -> None:
    """No progress bars or advisory warnings from transformers while loading (errors still surface)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def resolve_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    names = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
             "fp16": torch.float16, "float16": torch.float16}
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}: use one of {sorted(names)}")
    return names[dtype]


def save_humanomni(model: HumanOmniForCausalLM, processor: HumanOmniProcessor, out_dir: str | Path) -> Path:
    """Write ``config.json``, ``model.safetensors`` (no towers; the tied head once) and the tokenizer."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(out)
    state = model.state_dict()  # the towers are not in it
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, out / "model.safetensors",
              metadata={"format": "pt"})
    processor.tokenizer.save_pretrained(out)
    return out

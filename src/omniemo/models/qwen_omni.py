"""Qwen2.5-Omni thinker (video + audio + text in, text out) through transformers' own model class.

The model is ``Qwen2_5OmniThinkerForConditionalGeneration``. Its processor in transformers needs torchvision
for video, which does not install beside the CPU torch here, so the video path is done here with the same
arithmetic: frames resized to a multiple of 28 px within the pixel budget (``smart_resize``), CLIP-normalised,
cut into 14 px patches, two frames per temporal patch, patches ordered by 2x2 merge group. Audio is the Whisper
log-mel (128 bins, 30 s window) with its attention mask; the placeholders ``<|VIDEO|>`` and ``<|AUDIO|>`` are
repeated once per embedding (video: t*h*w/4, audio: the encoder's output length). Video and audio are given as
two separate inputs (not interleaved), which the thinker's rotary positions support.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from omniemo.models.processing import SAMPLE_RATE, MediaSample, pad_rows

SYSTEM_PROMPT = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
                 "auditory and visual inputs, as well as generating text and speech.")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
VIDEO_TOKEN, AUDIO_TOKEN = "<|VIDEO|>", "<|AUDIO|>"


def audio_token_count(feature_frames: int) -> int:
    """Embeddings the Qwen2.5-Omni audio encoder gives for ``feature_frames`` log-mel frames."""
    return ((feature_frames - 1) // 2 + 1 - 2) // 2 + 1


def patchify_video(frames: np.ndarray, patch: int = 14, temporal: int = 2, merge: int = 2) -> tuple[np.ndarray, tuple]:
    """(T, C, H, W) normalised frames -> (t*h*w, C*temporal*patch*patch) patches and the (t, h, w) grid.

    A frame count that is not a multiple of ``temporal`` repeats the last frame, as transformers does.
    """
    if len(frames) % temporal:
        frames = np.concatenate([frames, np.repeat(frames[-1:], temporal - len(frames) % temporal, 0)])
    t, c, h, w = frames.shape
    gt, gh, gw = t // temporal, h // patch, w // patch
    x = frames.reshape(gt, temporal, c, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)  # (t, h/m, w/m, m, m, C, temporal, p, p)
    return np.ascontiguousarray(x.reshape(gt * gh * gw, c * temporal * patch * patch)), (gt, gh, gw)


class QwenOmniProcessor:
    """MediaSamples -> thinker inputs (left-padded), with the checkpoint's tokenizer and chat template."""

    def __init__(self, tokenizer, feature_extractor, *, min_pixels: int = 128 * 28 * 28, max_pixels: int = 768 * 28 * 28,
                 patch_size: int = 14, temporal_patch_size: int = 2, merge_size: int = 2, num_frames: int = 8,
                 image_mean=CLIP_MEAN, image_std=CLIP_STD):
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        self.patch_size, self.temporal_patch_size, self.merge_size = patch_size, temporal_patch_size, merge_size
        self.num_frames = num_frames
        self.mean = np.asarray(image_mean, np.float32)[:, None, None]
        self.std = np.asarray(image_std, np.float32)[:, None, None]
        self.video_token_id = tokenizer.convert_tokens_to_ids(VIDEO_TOKEN)
        self.audio_token_id = tokenizer.convert_tokens_to_ids(AUDIO_TOKEN)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    @property
    def suppress_token_ids(self) -> list[int]:
        ids = ["<|VIDEO|>", "<|AUDIO|>", "<|IMAGE|>", "<|vision_bos|>", "<|vision_eos|>", "<|audio_bos|>", "<|audio_eos|>"]
        return [i for i in self.tokenizer.convert_tokens_to_ids(ids) if i is not None and i != self.tokenizer.unk_token_id]

    def prompt_text(self, instruction: str, video: bool = True, audio: bool = True) -> str:
        media = ("<|vision_bos|><|VIDEO|><|vision_eos|>" if video else "") + \
                ("<|audio_bos|><|AUDIO|><|audio_eos|>" if audio else "")
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": media + instruction}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def video_patches(self, frames: np.ndarray) -> tuple[np.ndarray, tuple]:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        factor = self.patch_size * self.merge_size
        h, w = smart_resize(frames.shape[1], frames.shape[2], factor=factor, min_pixels=self.min_pixels,
                            max_pixels=self.max_pixels)
        out = np.empty((len(frames), 3, h, w), np.float32)
        for i, frame in enumerate(frames):
            img = np.asarray(Image.fromarray(frame).resize((w, h), Image.Resampling.BICUBIC), np.float32) / 255.0
            out[i] = (img.transpose(2, 0, 1) - self.mean) / self.std
        return patchify_video(out, self.patch_size, self.temporal_patch_size, self.merge_size)

    def __call__(self, samples: list[MediaSample], suffixes: list[list[int]] | None = None) -> dict:
        rows, patches, grids, seconds, feats, feat_masks = [], [], [], [], [], []
        for i, s in enumerate(samples):
            text = self.prompt_text(s.instruction, s.has_video, s.has_audio)
            counts = {}
            if s.has_video:
                p, grid = self.video_patches(s.frames)
                patches.append(p)
                grids.append(grid)
                seconds.append(self.temporal_patch_size * s.seconds_per_frame)
                counts[VIDEO_TOKEN] = grid[0] * grid[1] * grid[2] // self.merge_size ** 2
            if s.has_audio:
                f = self.feature_extractor(np.asarray(s.audio, np.float32), sampling_rate=SAMPLE_RATE,
                                           return_attention_mask=True, return_tensors="pt")
                feats.append(f.input_features[0])
                feat_masks.append(f.attention_mask[0])
                counts[AUDIO_TOKEN] = audio_token_count(int(f.attention_mask[0].sum()))
            for token, n in counts.items():
                text = text.replace(token, token * n, 1)
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            rows.append(ids + (suffixes[i] if suffixes else []))
        input_ids, attention_mask = pad_rows(rows, self.tokenizer.pad_token_id)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if patches:
            batch["pixel_values_videos"] = torch.from_numpy(np.concatenate(patches))
            batch["video_grid_thw"] = torch.tensor(grids, dtype=torch.long)
            batch["video_second_per_grid"] = torch.tensor(seconds, dtype=torch.float)
        if feats:
            batch["input_features"] = torch.stack(feats)
            batch["feature_attention_mask"] = torch.stack(feat_masks)
        return batch


def load_qwen_omni(path: str | Path, *, device: str | None = None, dtype=None):
    """Thinker model and processor from a Qwen2.5-Omni folder (the full model's folder or a thinker-only one)."""
    from transformers import AutoTokenizer, Qwen2_5OmniThinkerForConditionalGeneration, WhisperFeatureExtractor

    from omniemo.models.loading import CheckpointError, quiet_transformers, resolve_dtype

    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder}: no config.json (is this a Qwen2.5-Omni checkpoint folder?)")
    quiet_transformers()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = resolve_dtype(dtype, device)
    model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(folder, dtype=dtype).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if (folder / "preprocessor_config.json").is_file():
        feature_extractor = WhisperFeatureExtractor.from_pretrained(folder)
    else:
        feature_extractor = WhisperFeatureExtractor(feature_size=model.config.audio_config.num_mel_bins)
    video_cfg = {}
    for name in ("video_preprocessor_config.json", "preprocessor_config.json"):
        if (folder / name).is_file():
            video_cfg = json.loads((folder / name).read_text())
            break
    vision = model.config.vision_config
    processor = QwenOmniProcessor(
        tokenizer, feature_extractor, patch_size=vision.patch_size, temporal_patch_size=vision.temporal_patch_size,
        merge_size=vision.spatial_merge_size,
        min_pixels=video_cfg.get("min_pixels", 128 * 28 * 28), max_pixels=video_cfg.get("max_pixels", 768 * 28 * 28))
    return model, processor


def write_tiny_qwen_omni(out_dir: str | Path, seed: int = 0) -> Path:
    """A thinker-only Qwen2.5-Omni folder with tiny random weights, its tokenizer and feature extractor."""
    from transformers import (Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration,
                              WhisperFeatureExtractor)

    from omniemo.models.tiny import OMNI_SPECIALS, tiny_qwen_tokenizer

    out = Path(out_dir)
    tokenizer = tiny_qwen_tokenizer(OMNI_SPECIALS)
    ids = dict(zip(OMNI_SPECIALS, tokenizer.convert_tokens_to_ids(OMNI_SPECIALS)))
    vocab = len(tokenizer) + 64 - len(tokenizer) % 64
    config = Qwen2_5OmniThinkerConfig(
        audio_config=dict(num_mel_bins=128, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64,
                          d_model=32, output_dim=64, n_window=100, max_source_positions=1500),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                           fullatt_block_indexes=[1]),
        text_config=dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id),
        audio_token_index=ids["<|AUDIO|>"], image_token_index=ids["<|IMAGE|>"], video_token_index=ids["<|VIDEO|>"],
        audio_start_token_id=ids["<|audio_bos|>"], audio_end_token_id=ids["<|audio_eos|>"],
        user_token_id=tokenizer.convert_tokens_to_ids("user") or 0)
    # published thinker configs carry these too; the rotary-position code reads them
    config.vision_start_token_id, config.vision_end_token_id = ids["<|vision_bos|>"], ids["<|vision_eos|>"]
    torch.manual_seed(seed)
    model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    # small frames keep the tiny model's video short: 4 to 16 merged patches of 28 px per frame pair
    processor = QwenOmniProcessor(tokenizer, WhisperFeatureExtractor(feature_size=128), min_pixels=4 * 28 * 28,
                                  max_pixels=16 * 28 * 28)
    return save_qwen_omni(model, processor, out)


def save_qwen_omni(model, processor: QwenOmniProcessor, out_dir: str | Path) -> Path:
    """The thinker's weights and config, the tokenizer, the feature extractor and the video pixel budget."""
    out = Path(out_dir)
    model.save_pretrained(out)
    processor.tokenizer.save_pretrained(out)
    processor.feature_extractor.save_pretrained(out)
    (out / "video_preprocessor_config.json").write_text(json.dumps(
        {"min_pixels": processor.min_pixels, "max_pixels": processor.max_pixels, "patch_size": processor.patch_size,
         "temporal_patch_size": processor.temporal_patch_size, "merge_size": processor.merge_size}, indent=2))
    return out

"""HumanOmni preprocessing, as the reference does it, and batching with left padding.

- Frames: the 8 frames of ``omniemo.media.sampling.HumanOmni`` (black frames pad short clips), each padded to a
  square with grey (127, 127, 127), resized to the tower's size (224) with bicubic resampling, scaled to [0, 1]
  and normalised with SigLIP's mean = std = 0.5.
- Audio: 16 kHz mono -> Whisper log-mel (128 bins for large-v3) over a 30 s window (padded or cut).
- Prompt: the user turn ``<vi_start><video><vi_end>\\n<au_start><audio><au_end>\\n{instruction}`` inside the
  checkpoint's chat template; a missing modality drops its line (the reference fed a wrong dummy video instead).
- ``<video>`` / ``<audio>`` become one placeholder token per embedding (392 / 500), so a batch is plain tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

VIDEO_PLACEHOLDER = "<video>"
AUDIO_PLACEHOLDER = "<audio>"
GREY = (127, 127, 127)
SAMPLE_RATE = 16000
# The reference prompts (R1-OMNI.md): the training/demo question and the evaluation scripts' question.
R1OMNI_INSTRUCTION = (
    "As an emotional recognition expert; throughout the video, which emotion conveyed by the characters is the most "
    "obvious to you?\nOutput the thinking process in <think> </think> and final emotion in <answer> </answer> tags.")
EVAL_INSTRUCTION = ("As an emotional recognition expert, in the video, when the characters display their emotions, "
                    "which predominant feeling is most clearly expressed?")


def pad_rows(rows: list[list[int]], pad: int, left: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows padded to the longest, and the attention mask: on the left for generation (every prompt ends
    where decoding starts), on the right for training."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def user_turn(instruction: str, video: bool = True, audio: bool = True) -> str:
    """The reference's user message, keeping only the modalities present."""
    parts = []
    if video:
        parts.append(f"<vi_start>{VIDEO_PLACEHOLDER}<vi_end>\n")
    if audio:
        parts.append(f"<au_start>{AUDIO_PLACEHOLDER}<au_end>\n")
    return "".join(parts) + instruction


def square_pad(frame: np.ndarray, fill=GREY) -> np.ndarray:
    """Centre ``frame`` (H, W, 3) on a square of ``fill``."""
    h, w = frame.shape[:2]
    side = max(h, w)
    out = np.empty((side, side, 3), np.uint8)
    out[:] = fill
    top, left = (side - h) // 2, (side - w) // 2
    out[top:top + h, left:left + w] = frame
    return out


def frames_to_pixels(frames: np.ndarray, size: int = 224) -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB -> (T, 3, size, size) float32 normalised for SigLIP."""
    out = np.empty((len(frames), 3, size, size), np.float32)
    for i, frame in enumerate(frames):
        img = Image.fromarray(square_pad(frame)).resize((size, size), Image.Resampling.BICUBIC)
        out[i] = (np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return torch.from_numpy(out)


@dataclass
class MediaSample:
    """One prompt's inputs: ``frames`` (T, H, W, 3) uint8 or None, ``audio`` 16 kHz float32 or None."""

    instruction: str
    frames: np.ndarray | None = None
    audio: np.ndarray | None = None
    target: str | None = None  # the assistant's answer, for training
    seconds_per_frame: float = 0.5  # time between sampled frames (Qwen2.5-Omni's temporal positions use it)

    @property
    def has_video(self) -> bool:
        return self.frames is not None and len(self.frames) > 0

    @property
    def has_audio(self) -> bool:
        return self.audio is not None and len(self.audio) > 0


def load_media_sample(path, instruction: str, num_frames: int = 8, modalities=("video", "audio"),
                      target: str | None = None) -> tuple[MediaSample, list[str]]:
    """Decode a clip into a MediaSample (reference 8-frame sampling, 16 kHz audio) and the modalities it lacks.

    Raises MediaError (naming the file) when the file is unusable or has none of ``modalities``.
    """
    from omniemo.media.decode import load_clip
    from omniemo.media.errors import MediaError
    from omniemo.media.sampling import HumanOmni

    want_video, want_audio = "video" in modalities, "audio" in modalities
    clip = load_clip(path, HumanOmni(num_frames) if want_video else None, audio=want_audio)
    frames = clip.frames if want_video and clip.has_video else None
    audio = clip.audio if want_audio and clip.has_audio and len(clip.audio) else None
    missing = [m for m, present in (("video", frames is not None), ("audio", audio is not None))
               if m in modalities and not present]
    if frames is None and audio is None:
        raise MediaError(f"{path}: none of the modalities {', '.join(modalities)} is in the file")
    sample = MediaSample(instruction, frames, audio, target=target)
    valid = clip.frame_times[np.isfinite(clip.frame_times)] if frames is not None else np.zeros(0)
    if len(valid) > 1:
        sample.seconds_per_frame = float(np.mean(np.diff(valid)))
    return sample, missing


class HumanOmniProcessor:
    """Turns MediaSamples into model inputs. Built by ``omniemo.models.loading`` from a checkpoint folder."""

    def __init__(self, tokenizer, bert_tokenizer, feature_extractor, *, num_frames: int = 8, image_size: int = 224,
                 video_tokens_per_frame: int = 49, audio_tokens: int = 500):
        self.tokenizer = tokenizer
        self.bert_tokenizer = bert_tokenizer
        self.feature_extractor = feature_extractor
        self.num_frames = num_frames
        self.image_size = image_size
        self.video_tokens = num_frames * video_tokens_per_frame
        self.audio_tokens = audio_tokens
        # Placeholders become tokens of their own; a published tokenizer without them gets them added here, below
        # the embedding table's size (Qwen2's table has spare rows), and never sampled (see suppress_token_ids).
        missing = [t for t in (VIDEO_PLACEHOLDER, AUDIO_PLACEHOLDER) if t not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_special_tokens({"additional_special_tokens": missing})
        self.video_token_id = tokenizer.convert_tokens_to_ids(VIDEO_PLACEHOLDER)
        self.audio_token_id = tokenizer.convert_tokens_to_ids(AUDIO_PLACEHOLDER)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    @property
    def suppress_token_ids(self) -> list[int]:
        return [self.video_token_id, self.audio_token_id]

    def prompt_text(self, instruction: str, video: bool = True, audio: bool = True) -> str:
        messages = [{"role": "user", "content": user_turn(instruction, video, audio)}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def prompt_ids(self, text: str) -> list[int]:
        """Token ids of a rendered prompt, each placeholder expanded to one id per embedding."""
        ids: list[int] = []
        expand = {VIDEO_PLACEHOLDER: [self.video_token_id] * self.video_tokens,
                  AUDIO_PLACEHOLDER: [self.audio_token_id] * self.audio_tokens}
        rest = text
        while rest:
            hits = [(rest.find(p), p) for p in expand if rest.find(p) >= 0]
            if not hits:
                ids += self.tokenizer.encode(rest, add_special_tokens=False)
                break
            at, placeholder = min(hits)
            if at:
                ids += self.tokenizer.encode(rest[:at], add_special_tokens=False)
            ids += expand[placeholder]
            rest = rest[at + len(placeholder):]
        return ids

    def audio_features(self, audio: np.ndarray) -> torch.Tensor:
        """(n_mels, 3000) Whisper log-mel of a 16 kHz signal (30 s window, padded or cut)."""
        out = self.feature_extractor(np.asarray(audio, np.float32), sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return out.input_features[0]

    def __call__(self, samples: list[MediaSample], with_targets: bool = False) -> dict[str, torch.Tensor | None]:
        """Batch ``samples``: left-padded ids (or right-padded with ``labels`` when training on targets)."""
        rows, labels = [], []
        for s in samples:
            ids = self.prompt_ids(self.prompt_text(s.instruction, s.has_video, s.has_audio))
            if with_targets:
                target = self.tokenizer.encode(s.target + self.tokenizer.eos_token, add_special_tokens=False)
                labels.append([-100] * len(ids) + target)  # loss on the assistant turn only
                ids = ids + target
            rows.append(ids)
        input_ids, attention_mask = pad_rows(rows, self.tokenizer.pad_token_id, left=not with_targets)
        video = [s for s in samples if s.has_video]
        audio = [s for s in samples if s.has_audio]
        batch: dict[str, torch.Tensor | None] = {"input_ids": input_ids, "attention_mask": attention_mask,
                                                 "pixel_values": None, "input_features": None,
                                                 "bert_input_ids": None, "bert_attention_mask": None}
        if with_targets:
            batch["labels"] = pad_rows(labels, -100, left=False)[0]
        if video:
            batch["pixel_values"] = torch.stack([frames_to_pixels(self._frames(s.frames), self.image_size) for s in video])
            bert = self.bert_tokenizer([s.instruction for s in video], padding=True, truncation=True,
                                       max_length=512, return_tensors="pt")
            batch["bert_input_ids"], batch["bert_attention_mask"] = bert["input_ids"], bert["attention_mask"]
        if audio:
            batch["input_features"] = torch.stack([self.audio_features(s.audio) for s in audio])
        return batch

    def _frames(self, frames: np.ndarray) -> np.ndarray:
        # the model was built for num_frames frames: pad short inputs with black, as the reference sampler does
        if len(frames) >= self.num_frames:
            return frames[: self.num_frames]
        black = np.zeros((self.num_frames - len(frames), *frames.shape[1:]), np.uint8)
        return np.concatenate([frames, black])

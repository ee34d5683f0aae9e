"""Omni-model predictors: a clip in, a Prediction out, behind the same interface as the CPU cue pipeline.

The model writes its own ``<think>...</think><answer>...</answer>``; the label is its answer mapped into the label
set (an answer outside it stays, and scores as wrong, as in the paper). ``probabilities`` are the model's own:
after its reasoning, the likelihood of each label as the text of ``<answer>``, normalised over the label set.
"""

from __future__ import annotations

from pathlib import Path

import torch

from omniemo.answers import extract_answer, extract_think, parse_label
from omniemo.labels import LabelSet, get_labelset
from omniemo.models.processing import EVAL_INSTRUCTION, R1OMNI_INSTRUCTION, MediaSample, load_media_sample, pad_rows
from omniemo.prediction import Prediction

MODALITIES = ("video", "audio")


def parse_modalities(spec: str | tuple | list | None) -> tuple[str, ...]:
    if spec is None:
        return MODALITIES
    # "text" is always there (the instruction; spoken words are in the audio)
    names = tuple(x.strip() for x in (spec.split(",") if isinstance(spec, str) else spec) if x.strip() not in ("", "text"))
    unknown = [n for n in names if n not in MODALITIES]
    if unknown or not names:
        raise ValueError(f"modalities for an omni model are video and/or audio, got {spec!r}")
    return names


class OmniPredictor:
    """Shared clip decoding, batched generation, answer parsing and label scoring; subclasses load the model."""

    name = "omni"

    def __init__(self, model, processor, *, modalities=None, instruction: str = R1OMNI_INSTRUCTION,
                 max_new_tokens: int = 512, do_sample: bool = False, temperature: float = 1.0, top_k: int = 50,
                 score_labels: bool = True):
        self.model, self.processor = model, processor
        self.modalities = parse_modalities(modalities)
        self.instruction = {"r1omni": R1OMNI_INSTRUCTION, "eval": EVAL_INSTRUCTION}.get(instruction, instruction)
        self.generation = {"max_new_tokens": max_new_tokens, "do_sample": do_sample}
        if do_sample:
            self.generation.update(temperature=temperature, top_k=top_k)
        self.score_labels = score_labels
        self.progress = None  # the CLI sets a callback; generation has no useful progress to report

    # -- the Predictor interface ------------------------------------------------------------------------------
    def predict(self, path: str | Path, labels: str | LabelSet = "dfew") -> Prediction:
        return self.predict_batch([path], labels)[0]

    def predict_batch(self, paths: list[str | Path], labels: str | LabelSet = "dfew") -> list[Prediction]:
        """One batch through the model (left padding); raises the MediaError of the first unusable file."""
        labelset = get_labelset(labels)
        samples, missing = zip(*(self.load_sample(p) for p in paths))
        prompt = self.prepare(list(samples))
        outputs = self.generate(prompt)
        probs = self.label_probabilities(prompt, outputs, labelset) if self.score_labels else [{}] * len(paths)
        return [self._prediction(str(p), out, pr, labelset, miss)
                for p, out, pr, miss in zip(paths, outputs, probs, missing)]

    # -- steps ------------------------------------------------------------------------------------------------
    def load_sample(self, path) -> tuple[MediaSample, list[str]]:
        return load_media_sample(path, self.instruction, self.num_frames, self.modalities)

    @property
    def num_frames(self) -> int:
        return self.processor.num_frames

    def prepare(self, samples: list[MediaSample]):
        """The batch's prompt in the model's own form (embeddings, or ids with media tensors)."""
        raise NotImplementedError

    def generate(self, prompt) -> list[str]:
        raise NotImplementedError

    def label_probabilities(self, prompt, outputs: list[str], labelset: LabelSet) -> list[dict[str, float]]:
        raise NotImplementedError

    def _prediction(self, path, output, probs, labelset, missing) -> Prediction:
        answer = extract_answer(output).strip()
        label = parse_label(output, labelset) or answer
        think = extract_think(output)
        reasoning = [{"text": think.strip(), "cues": [], "source": "model"}] if think else []
        return Prediction(path=path, label=label, probabilities=probs, output=output, reasoning=reasoning,
                          missing_modalities=missing, backend=self.name)


def score_continuations(model, prefix_embeds: torch.Tensor, prefix_mask: torch.Tensor,
                        continuations: list[list[int]], embed) -> torch.Tensor:
    """Sum of log-probs of each continuation after one prefix (1, L, H), sharing the prefix's KV cache.

    Returns (len(continuations),). The prefix runs once; the continuations run as one right-padded batch.
    """
    out = model(inputs_embeds=prefix_embeds, attention_mask=prefix_mask, use_cache=True)
    first = torch.log_softmax(out.logits[0, -1].float(), -1)
    cache = out.cache
    k = len(continuations)
    cache.batch_repeat_interleave(k)
    ids, mask = (t.to(prefix_embeds.device) for t in pad_rows(continuations, 0, left=False))
    full_mask = torch.cat([prefix_mask.expand(k, -1), mask], dim=1)
    logits = model(inputs_embeds=embed(ids), attention_mask=full_mask, cache=cache).logits.float()
    logp = torch.log_softmax(logits, -1)
    scores = first[ids[:, 0]].clone()
    for i, c in enumerate(continuations):
        for j in range(1, len(c)):
            scores[i] += logp[i, j - 1, c[j]]
    return scores


class HumanOmniPredictor(OmniPredictor):
    """HumanOmni / R1-Omni checkpoints (``--backend humanomni --model-path DIR``)."""

    name = "humanomni"

    def __init__(self, model_path, *, vision_tower=None, audio_tower=None, bert=None, device=None, dtype=None,
                 modalities=None, **options):
        from omniemo.models.loading import load_humanomni

        modalities = parse_modalities(modalities)
        model, processor = load_humanomni(model_path, vision_tower=vision_tower, audio_tower=audio_tower, bert=bert,
                                          device=device, dtype=dtype, modalities=modalities)
        super().__init__(model, processor, modalities=modalities, **options)

    @torch.no_grad()
    def prepare(self, samples):
        """Prompt embeddings (media encoded once) and the left-padded attention mask."""
        batch = {k: (v.to(self.model.device) if v is not None else None) for k, v in self.processor(samples).items()}
        embeds = self.model.embed_inputs(batch["input_ids"], batch["pixel_values"], batch["input_features"],
                                         batch["bert_input_ids"], batch["bert_attention_mask"])
        return embeds, batch["attention_mask"]

    @torch.no_grad()
    def generate(self, prompt):
        embeds, mask = prompt
        tok = self.processor.tokenizer
        ids = self.model.generate(
            inputs_embeds=embeds, attention_mask=mask, **self.generation,
            suppress_tokens=self.processor.suppress_token_ids, pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id)
        return [t.strip() for t in tok.batch_decode(ids, skip_special_tokens=True)]

    @torch.no_grad()
    def label_probabilities(self, prompt, outputs, labelset):
        embeds, mask = prompt
        tok = self.processor.tokenizer
        embed = self.model.model.embed_tokens
        conts = [tok.encode(f"{label}</answer>", add_special_tokens=False) for label in labelset.labels]
        results = []
        for i, output in enumerate(outputs):
            keep = mask[i].bool()
            think = extract_think(output)
            prefix = f"<think>{think}</think>\n<answer>" if think is not None else "<answer>"
            prefix_ids = torch.tensor([tok.encode(prefix, add_special_tokens=False)], device=embeds.device)
            row = torch.cat([embeds[i : i + 1, keep], embed(prefix_ids)], dim=1)
            scores = score_continuations(self.model, row, torch.ones(row.shape[:2], dtype=torch.long,
                                                                     device=row.device), conts, embed)
            results.append({label: round(p, 6) for label, p in zip(labelset.labels, torch.softmax(scores, 0).tolist())})
        return results


class QwenOmniPredictor(OmniPredictor):
    """Qwen2.5-Omni thinker checkpoints (``--backend qwen-omni --model-path DIR``)."""

    name = "qwen-omni"

    def __init__(self, model_path, *, device=None, dtype=None, modalities=None, **options):
        from omniemo.models.qwen_omni import load_qwen_omni

        model, processor = load_qwen_omni(model_path, device=device, dtype=dtype)
        super().__init__(model, processor, modalities=modalities, **options)

    def prepare(self, samples):
        return samples, self.processor(samples)

    def _to_device(self, batch):
        return {k: v.to(self.model.device) if torch.is_tensor(v) else v for k, v in batch.items()}

    @torch.no_grad()
    def generate(self, prompt):
        tok = self.processor.tokenizer
        batch = self._to_device(prompt[1])
        ids = self.model.generate(**batch, **self.generation, suppress_tokens=self.processor.suppress_token_ids,
                                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        new = ids[:, batch["input_ids"].shape[1]:]
        return [t.strip() for t in tok.batch_decode(new, skip_special_tokens=True)]

    @torch.no_grad()
    def label_probabilities(self, prompt, outputs, labelset):
        # The thinker's multimodal rotary positions make KV-cache reuse awkward: each label is scored with a full
        # forward of prompt + reasoning + label (K forwards per clip; fine for label sets of 6-11 words).
        tok = self.processor.tokenizer
        results = []
        for sample, output in zip(prompt[0], outputs):
            think = extract_think(output)
            prefix = tok.encode(f"<think>{think}</think>\n<answer>" if think is not None else "<answer>",
                                add_special_tokens=False)
            scores = []
            for label in labelset.labels:
                cont = tok.encode(f"{label}</answer>", add_special_tokens=False)
                batch = self._to_device(self.processor([sample], suffixes=[prefix + cont]))
                logp = torch.log_softmax(self.model(**batch).logits[0].float(), -1)
                ids, total = batch["input_ids"][0], batch["input_ids"].shape[1]
                scores.append(sum(logp[t - 1, ids[t]].item() for t in range(total - len(cont), total)))
            probs = torch.softmax(torch.tensor(scores), 0).tolist()
            results.append({label: round(p, 6) for label, p in zip(labelset.labels, probs)})
        return results

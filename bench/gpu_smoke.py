"""CUDA checks of the omni backends on tiny random checkpoints (run on a GPU machine; the CPU tests cover the rest).

    python bench/gpu_smoke.py

- fp32 on CUDA: batched greedy generation equals one-by-one, and the logits equal the CPU's (to 1e-4);
- bf16 and fp16 on CUDA: a batch of clips (video+audio, audio only, video only) runs through predict_batch;
- a tiny GRPO step and SFT step on CUDA through `omniemo train` (bf16 autocast).
Prints one JSON line per check; exits 1 if one fails.
"""

from __future__ import annotations

import json
import sys
import tempfile
import traceback
from pathlib import Path

import torch

from omniemo.media.synth import write_clip
from omniemo.models.backend import HumanOmniPredictor, OmniPredictor, QwenOmniPredictor
from omniemo.models.loading import load_humanomni
from omniemo.models.qwen_omni import load_qwen_omni, write_tiny_qwen_omni
from omniemo.models.tiny import write_tiny_humanomni

REPO = Path(__file__).resolve().parents[1]


def predictor(kind, path, device, dtype):
    if kind == "humanomni":
        model, proc = load_humanomni(path, device=device, dtype=dtype)
        p = HumanOmniPredictor.__new__(HumanOmniPredictor)
    else:
        model, proc = load_qwen_omni(path, device=device, dtype=dtype)
        p = QwenOmniPredictor.__new__(QwenOmniPredictor)
    OmniPredictor.__init__(p, model, proc, max_new_tokens=8)
    return p


def main() -> None:
    torch.backends.cudnn.allow_tf32 = False  # exact fp32 convolutions for the CPU comparison
    torch.backends.cuda.matmul.allow_tf32 = False
    results, ok = [], True
    tmp = Path(tempfile.mkdtemp())
    clips = [write_clip(tmp / "av.mp4", 2.0, size=(160, 120)), write_clip(tmp / "a.wav", 2.0),
             write_clip(tmp / "v.mp4", 2.0, size=(160, 120), audio=False)]
    ckpts = {"humanomni": write_tiny_humanomni(tmp / "ho"), "qwen-omni": write_tiny_qwen_omni(tmp / "qo")}

    def check(name, fn):
        nonlocal ok
        try:
            detail = fn()
            results.append({"check": name, "ok": True, **(detail or {})})
        except Exception as exc:  # report and go on
            ok = False
            results.append({"check": name, "ok": False, "error": f"{type(exc).__name__}: {exc}",
                            "trace": traceback.format_exc().splitlines()[-4:]})
        print(json.dumps(results[-1]), flush=True)

    for kind, path in ckpts.items():
        def fp32():
            gpu, cpu = predictor(kind, path, "cuda", "fp32"), predictor(kind, path, "cpu", "fp32")
            samples = [gpu.load_sample(c)[0] for c in clips]

            def last_logits(p, prompt):
                with torch.no_grad():
                    if kind == "humanomni":
                        out = p.model(inputs_embeds=prompt[0], attention_mask=prompt[1])
                    else:
                        out = p.model(**{k: v.to(p.model.device) if torch.is_tensor(v) else v
                                         for k, v in prompt[1].items()})
                return out.logits[:, -1].float().cpu()

            together = last_logits(gpu, gpu.prepare(samples))
            alone = torch.cat([last_logits(gpu, gpu.prepare([s])) for s in samples])
            batch_diff = (together - alone).abs().max().item()
            device_diff = (last_logits(gpu, gpu.prepare(samples[:1])) - last_logits(cpu, cpu.prepare(samples[:1])))
            device_diff = device_diff.abs().max().item()
            assert batch_diff < 1e-3 and device_diff < 1e-3, (batch_diff, device_diff)
            texts_batched = gpu.generate(gpu.prepare(samples))
            texts_alone = [gpu.generate(gpu.prepare([s]))[0] for s in samples]
            return {"max_logit_diff_batched_vs_single": batch_diff, "max_logit_diff_cuda_vs_cpu": device_diff,
                    "greedy_texts_agree": sum(a == b for a, b in zip(texts_batched, texts_alone))}

        check(f"{kind} fp32 cuda: batched == single, cuda == cpu (next-token logits)", fp32)
        for dtype in ("bf16", "fp16"):
            def half(dtype=dtype):
                p = predictor(kind, path, "cuda", dtype)
                preds = p.predict_batch(clips, "mafw")
                assert [x.missing_modalities for x in preds] == [[], ["video"], ["audio"]]
                assert all(abs(sum(x.probabilities.values()) - 1) < 1e-3 for x in preds)
                return {"labels": [x.label for x in preds]}

            check(f"{kind} {dtype} cuda: predict_batch over modality subsets", half)

    def train():
        from omniemo.train.config import load_config
        from omniemo.train.grpo import train_grpo
        from omniemo.train.sft import train_sft
        from omniemo.train.toy import write_toy_dataset

        manifest = write_toy_dataset(tmp / "toy", 4, 0)
        common = [f"model.path={ckpts['humanomni']}", f"data.root={manifest}", "data.split=train",
                  "optim.max_steps=2", "mixed_precision=bf16"]
        sft = train_sft(load_config(REPO / "recipes" / "tiny-sft.yaml", common + [f"output_dir={tmp / 'sft'}"]))
        grpo = train_grpo(load_config(REPO / "recipes" / "tiny-grpo.yaml", common + [f"output_dir={tmp / 'grpo'}"]))
        return {"sft_loss": sft["loss"], "grpo_kl_last": grpo["kl"]}

    check("humanomni SFT + GRPO steps on cuda (bf16 autocast)", train)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

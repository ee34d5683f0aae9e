"""Training: rewards, GRPO math, SFT masking, what learns and what stays frozen, resume, bad data, 2 processes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from omniemo.train.config import load_config
from omniemo.train.grpo import completion_mask, group_advantages, grpo_loss, token_logps, train_grpo
from omniemo.train.rewards import (accuracy_normalized, accuracy_strict, format_reward, grounding_checks,
                                   grounding_reward)
from omniemo.train.sft import train_sft

REPO = Path(__file__).resolve().parents[1]


# -- rewards ----------------------------------------------------------------------------------------------------

def test_strict_accuracy_has_the_reference_semantics():
    outs = ["<think>x</think>\n<answer> sad </answer>", "<think>x</think><answer>Sad</answer>", "sad",
            "<think>sad</think>", "<answer>sad</answer><answer>happy</answer>", "<answer>sadness</answer>"]
    # stripped exact match of the first <answer> (or of the whole output); no lower-casing, no synonyms
    assert accuracy_strict(outs, ["sad"] * 6) == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]


def test_normalized_accuracy_maps_synonyms_into_the_label_set():
    outs = ["<answer>Sad</answer>", "<answer>sadness</answer>", "<answer>Happiness</answer>", "<answer>calm</answer>",
            "no answer at all"]
    assert accuracy_normalized(outs, ["sad", "sad", "happy", "neutral", "sad"], labels="mafw") == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_format_reward_is_a_full_match():
    outs = ["<think>a</think>\n<answer>b</answer>", "<think>a</think><answer>b</answer>",
            "<think>a</think>\n<answer>b</answer> extra", "<answer>b</answer>", "<think>a\nb</think>  \n<answer>c</answer>"]
    assert format_reward(outs) == [1.0, 1.0, 0.0, 0.0, 1.0]


def _evidence(face=True, voice=True, words=True):
    status = lambda on: {"status": "present" if on else "absent"}  # noqa: E731
    cues = []
    if face:
        cues += [{"id": "face.lip_corner_pull", "value": 0.1, "spans": [[0.5, 1.5]]},
                 {"id": "face.brow_furrow", "value": 0.0, "spans": []},
                 {"id": "face.expression.happy", "value": 0.7, "spans": [[0, 2]]}]
    if voice:
        cues += [{"id": "voice.loud_stretches", "value": 0, "spans": []}, {"id": "voice.pauses", "value": 2, "spans": []}]
    if words:
        cues += [{"id": "words.transcript", "value": "I can't believe we won the game", "spans": [[0, 2]]}]
    return {"modalities": {"face": status(face), "voice": status(voice), "words": status(words)}, "cues": cues}


def test_grounding_checks_claims_against_measured_cues():
    ev = _evidence()
    checks = dict(grounding_checks('She smiles and says "we won the game", with a pause.', ev))
    assert all(checks.values()) and len(checks) >= 4
    bad = dict(grounding_checks('He frowns and shouts "we lost".', ev))
    assert list(bad.values()).count(False) == 3  # frown (brow_furrow inactive), shout (no loud stretch), the quote
    no_voice = dict(grounding_checks("Her voice trembles.", _evidence(voice=False)))
    assert list(no_voice.values()) == [False]  # a claim about a modality that was not measured
    outs = ['<think>She smiles and says "we won".</think>\n<answer>happy</answer>',
            "<think>He frowns.</think>\n<answer>angry</answer>", "<answer>happy</answer>",
            "<think>Nothing checkable here.</think><answer>happy</answer>"]
    scores = grounding_reward(outs, evidence=[ev, ev, ev, ev])
    assert scores[0] == 1.0 and scores[1] < 1.0 and scores[2] == 0.0 and scores[3] == 0.0
    assert grounding_reward(outs[:1], evidence=[None]) == [0.0]


# -- GRPO math ----------------------------------------------------------------------------------------------------

def test_group_advantages_normalise_within_each_group():
    r = torch.tensor([1.0, 0.0, 1.0, 0.0, 2.0, 2.0, 2.0, 2.0])
    a = group_advantages(r, 4)
    std = torch.tensor([1.0, 0.0, 1.0, 0.0]).std()
    assert torch.allclose(a[:4], (torch.tensor([1.0, 0.0, 1.0, 0.0]) - 0.5) / (std + 1e-4))
    assert torch.equal(a[4:], torch.zeros(4))  # equal rewards: no signal


def test_completion_mask_stops_after_the_first_eos():
    ids = torch.tensor([[5, 6, 2, 7, 2], [5, 6, 7, 8, 9], [2, 5, 5, 5, 5]])
    assert completion_mask(ids, 2).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


def test_zero_policy_gradient_when_a_group_agrees_and_kl_zero_at_start():
    logits = torch.randn(4, 6, 11, requires_grad=True)
    ids = torch.randint(0, 11, (4, 6))
    logp = token_logps(logits, ids)
    mask = torch.ones(4, 6, dtype=torch.long)
    loss, kl = grpo_loss(logp, logp.detach(), group_advantages(torch.ones(4), 4), mask, beta=0.04)
    loss.backward()
    assert loss.item() == 0.0 and kl.item() == 0.0 and torch.count_nonzero(logits.grad) == 0
    # with differing rewards, the gradient raises the better samples' log-probability
    logits.grad = None
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), 4)
    loss, _ = grpo_loss(token_logps(logits, ids), logp.detach(), adv, mask, beta=0.04)
    loss.backward()
    step = -logits.grad[0].gather(-1, ids[0].unsqueeze(-1))
    assert (step > 0).all()


def test_loss_averages_each_completion_up_to_its_mask():
    logp = torch.zeros(2, 4)
    ref = torch.tensor([[0.0, 0.0, 0.0, 5.0], [0.0, 0.0, 0.0, 0.0]])  # token 3 of row 0 is past its EOS
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    loss, kl = grpo_loss(logp, ref, torch.zeros(2), mask, beta=1.0)
    assert kl.item() == 0.0 and loss.item() == 0.0


# -- runs on a tiny model and toy data ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from omniemo.models.tiny import write_tiny_humanomni
    from omniemo.train.toy import write_toy_dataset

    root = tmp_path_factory.mktemp("train")
    return {"ckpt": write_tiny_humanomni(root / "ckpt"), "manifest": write_toy_dataset(root / "toy", 8, 3),
            "root": root}


def _config(recipe: str, tiny, out: Path, *extra: str):
    return load_config(REPO / "recipes" / recipe, [f"model.path={tiny['ckpt']}", f"data.root={tiny['manifest']}",
                                                   "data.split=train", f"output_dir={out}", *extra])


def _metrics(out: Path) -> list[dict]:
    with (out / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_sft_labels_cover_the_answer_only(tiny):
    from omniemo.models.loading import load_humanomni
    from omniemo.models.processing import MediaSample

    model, proc = load_humanomni(tiny["ckpt"], device="cpu")
    batch = proc([MediaSample("Which emotion?", None, torch.zeros(8000).numpy(), target="<answer>sad</answer>"),
                  MediaSample("Which one?", None, torch.zeros(4000).numpy(), target="happy")], with_targets=True)
    for row_ids, row_labels, target in zip(batch["input_ids"], batch["labels"], ["<answer>sad</answer>", "happy"]):
        taught = row_labels[row_labels != -100].tolist()
        assert taught == proc.tokenizer.encode(target + proc.tokenizer.eos_token, add_special_tokens=False)
        first = (row_labels != -100).nonzero()[0].item()
        assert proc.tokenizer.decode(row_ids[:first]).endswith("<|im_start|>assistant\n")  # the prompt is masked
    with torch.no_grad():
        out = model(**batch)
        logits = out.logits[:, :-1]
        labels = batch["labels"][:, 1:]
        manual = torch.nn.functional.cross_entropy(logits[labels != -100], labels[labels != -100])
    assert torch.allclose(out.loss, manual)


def test_sft_step_changes_trained_parts_only(tiny, tmp_path):
    from omniemo.models.loading import load_humanomni

    before, _ = load_humanomni(tiny["ckpt"], device="cpu")
    towers_before = {k: v.clone() for k, v in before.towers["vision"].state_dict().items()}
    train_sft(_config("tiny-sft.yaml", tiny, tmp_path / "run", "optim.max_steps=1"))
    after, _ = load_humanomni(tmp_path / "run" / "final", vision_tower=tiny["ckpt"] / "siglip",
                              audio_tower=tiny["ckpt"] / "whisper", bert=tiny["ckpt"] / "bert", device="cpu")
    b, a = before.state_dict(), after.state_dict()
    changed = {k for k in b if not torch.equal(b[k], a[k])}
    assert any(k.startswith("model.layers.") for k in changed)
    assert any(k.startswith("model.audio_projector.") for k in changed)
    assert not any(k.startswith("model.bert_model.") for k in changed)  # not in the recipe's train list
    assert all(torch.equal(v, after.towers["vision"].state_dict()[k]) for k, v in towers_before.items())


def test_grpo_run_logs_kl_zero_at_the_start_and_never_samples_placeholders(tiny, tmp_path):
    out = tmp_path / "grpo"
    summary = train_grpo(_config("tiny-grpo.yaml", tiny, out, "optim.max_steps=2"))
    rows = _metrics(out)
    assert float(rows[0]["kl"]) == 0.0 and len(rows) == 2
    for key in ("reward", "accuracy", "format_rate", "completion_length", "samples_per_s", "reward/format"):
        assert key in rows[0]
    assert (out / "final" / "model.safetensors").is_file() and summary["steps"] == 2


def test_placeholder_tokens_are_suppressed_when_sampling(tiny):
    from omniemo.models.loading import load_humanomni
    from omniemo.models.processing import MediaSample
    from omniemo.train.policy import HumanOmniPolicy

    model, proc = load_humanomni(tiny["ckpt"], device="cpu")
    with torch.no_grad():  # make the placeholder the model's favourite token
        model.lm_head.weight[proc.video_token_id] = 50 * model.model.norm.weight
    policy = HumanOmniPolicy(model, proc)
    batch = proc([MediaSample("q", None, torch.zeros(8000).numpy())])
    gen = dict(do_sample=True, max_new_tokens=6, pad_token_id=proc.tokenizer.pad_token_id,
               eos_token_id=proc.tokenizer.eos_token_id)
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="placeholders"):  # unsuppressed, it is sampled and breaks the next step
        policy.generate(model, batch, **gen)
    torch.manual_seed(0)
    out = policy.generate(model, batch, suppress_tokens=policy.suppress_token_ids, **gen)
    assert not torch.isin(out, torch.tensor(policy.suppress_token_ids)).any()


def test_resume_reproduces_the_uninterrupted_run(tiny, tmp_path):
    extra = ("optim.max_steps=3", "grpo.num_generations=2")
    whole = tmp_path / "whole"
    train_grpo(_config("tiny-grpo.yaml", tiny, whole, *extra))
    parts = tmp_path / "parts"
    stopped = train_grpo(_config("tiny-grpo.yaml", tiny, parts, *extra), stop_after=2)
    assert stopped["stopped_at"] == 2 and (parts / "checkpoints" / "latest").is_file()
    train_grpo(_config("tiny-grpo.yaml", tiny, parts, *extra))  # a fresh process would do the same
    a, b = _metrics(whole)[-1], _metrics(parts)[-1]
    assert a["step"] == b["step"] == "3"
    for key in ("loss", "kl", "reward", "completion_length"):
        assert a[key] == b[key], key


def test_bad_rows_and_files_are_skipped_and_counted(tiny, tmp_path):
    rows = [json.loads(x) for x in Path(tiny["manifest"]).read_text().splitlines()]
    base = Path(tiny["manifest"]).parent
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    rows += [{"path": str(tmp_path / "missing.mp4"), "label": "sad", "split": "train"},
             {"path": str(tmp_path / "broken.mp4"), "label": "sad", "split": "train"}]
    bad = tmp_path / "manifest.jsonl"
    bad.write_text("".join(json.dumps({**r, "path": str(base / r["path"]) if not Path(r["path"]).is_absolute()
                                       else r["path"]}) + "\n" for r in rows))
    cfg = _config("tiny-sft.yaml", tiny, tmp_path / "run", f"data.root={bad}", "optim.max_steps=4",
                  "optim.per_device_batch_size=3")
    summary = train_sft(cfg)
    assert summary["skipped"]["missing media files"] == 1
    assert summary["skipped"].get("unreadable media files", 0) >= 1  # read when its batch came up


def test_lora_trains_adapters_and_saves_a_merged_checkpoint(tiny, tmp_path):
    from omniemo.models.loading import load_humanomni
    from omniemo.train.policy import load_policy, trainable_names

    cfg = _config("tiny-sft.yaml", tiny, tmp_path / "run", "optim.max_steps=1", "model.lora={r: 4, alpha: 8}")
    policy = load_policy(cfg.model)
    names = trainable_names(policy.model)
    assert any("lora_A" in n for n in names) and not any("layers.0.self_attn.q_proj.base_layer" in n for n in names)
    assert any("audio_projector" in n for n in names)
    train_sft(cfg)
    model, _ = load_humanomni(tmp_path / "run" / "final", device="cpu")
    assert not any("lora" in k for k in model.state_dict())


def test_recipes_carry_the_paper_settings():
    grpo = load_config(REPO / "recipes" / "r1omni-grpo.yaml")
    assert (grpo.grpo.num_generations, grpo.grpo.temperature, grpo.grpo.top_k, grpo.grpo.beta) == (8, 1.0, 50, 0.04)
    assert (grpo.optim.lr, grpo.optim.epochs, grpo.optim.scheduler) == (1e-6, 2, "linear")
    assert grpo.grpo.rewards == ["accuracy", "format"] and grpo.mixed_precision == "bf16"
    emer = load_config(REPO / "recipes" / "r1omni-emer-sft.yaml")
    assert (emer.optim.lr, emer.optim.epochs, emer.optim.scheduler, emer.optim.warmup_ratio) == (2e-5, 5, "cosine", 0.03)
    label = load_config(REPO / "recipes" / "r1omni-mafw-dfew-sft.yaml")
    assert label.data.target == "label" and label.optim.per_device_batch_size * label.optim.gradient_accumulation_steps * 8 == 128
    with pytest.raises(ValueError, match="unknown key"):
        load_config(REPO / "recipes" / "tiny-sft.yaml", ["optim.learning_rate=1"])


def test_two_process_cpu_launch_completes(tiny, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(REPO / "recipes" / "accelerate" / "cpu-2proc.yaml"), "-m", "omniemo", "train", "sft",
           "--config", str(REPO / "recipes" / "tiny-sft.yaml"), "--output-dir", str(out),
           "--set", f"model.path={tiny['ckpt']}", "--set", f"data.root={tiny['manifest']}", "--set", "data.split=train",
           "--set", "optim.max_steps=2", "--set", "optim.per_device_batch_size=1"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es)" in result.stderr
    assert len(_metrics(out)) == 2 and (out / "final" / "model.safetensors").is_file()


def test_cli_trains_from_a_recipe_and_reports_bad_config(tiny, tmp_path):
    from click.testing import CliRunner

    from omniemo.cli import main

    runner = CliRunner()
    toy = tmp_path / "toy"
    assert runner.invoke(main, ["datasets", "toy", str(toy), "--train", "3", "--test", "0"]).exit_code == 0
    args = ["--config", str(REPO / "recipes" / "tiny-grpo.yaml"), "--output-dir", str(tmp_path / "run"),
            "--set", f"model.path={tiny['ckpt']}", "--set", f"data.root={toy / 'manifest.jsonl'}",
            "--set", "optim.max_steps=1", "--set", "grpo.num_generations=2"]
    result = runner.invoke(main, ["train", "grpo", *args])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["steps"] == 1
    bad = runner.invoke(main, ["train", "sft", *args, "--set", "optim.lr_typo=1"])
    assert bad.exit_code == 2 and "lr_typo" in bad.output


def test_r1omni_json_rows_become_examples_and_bad_rows_are_counted(tiny, tmp_path):
    from omniemo.train.config import DataConfig
    from omniemo.train.examples import SkipLog, load_examples

    clip = sorted((Path(tiny["manifest"]).parent / "clips").glob("*.mp4"))[0]
    turn = lambda who, text: {"from": who, "value": text}  # noqa: E731
    rows = [{"video": str(clip), "conversations": [turn("human", "<video>\n<audio>\nWhich emotion?"),
                                                   turn("gpt", "<think>x</think>\n<answer>sad</answer>")]},
            {"conversations": [turn("human", "q"), turn("gpt", "sad")]},
            {"video": str(clip), "conversations": [turn("human", "q"), turn("gpt", "")]},
            {"video": str(tmp_path / "gone.mp4"), "conversations": [turn("human", "q"), turn("gpt", "happy")]}]
    data = tmp_path / "train.json"
    data.write_text(json.dumps(rows))
    skips = SkipLog()
    examples = load_examples(DataConfig(source="r1omni", root=str(data), labels="mafw"), skips)
    assert [(e.instruction, e.target, e.solution) for e in examples] == [
        ("Which emotion?", "<think>x</think>\n<answer>sad</answer>", "sad")]
    assert dict(skips.counts) == {"rows without a video": 1, "rows with an empty or unknown label": 1,
                                  "missing media files": 1}
    labels_only = load_examples(DataConfig(source="r1omni", root=str(data), labels="mafw", target="label"))
    assert labels_only[0].target == "sad"


def test_group_batch_equals_the_batch_of_repeated_prompts(tiny):
    import numpy as np

    from omniemo.models.loading import load_humanomni
    from omniemo.models.processing import MediaSample
    from omniemo.train.policy import HumanOmniPolicy

    model, proc = load_humanomni(tiny["ckpt"], device="cpu")
    policy = HumanOmniPolicy(model, proc)
    rng = np.random.default_rng(0)
    samples = [MediaSample("a", rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8), None),
               MediaSample("b", None, rng.standard_normal(8000).astype(np.float32)),
               MediaSample("c", rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8),
                           rng.standard_normal(4000).astype(np.float32))]
    grouped = policy.group_batch(samples, 3)
    plain = policy.prompt_batch([s for s in samples for _ in range(3)])
    assert grouped.keys() == plain.keys()
    assert all(torch.equal(grouped[k], plain[k]) for k in plain if plain[k] is not None)

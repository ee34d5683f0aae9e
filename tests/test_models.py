"""Omni model backends on tiny random checkpoints: layout, loading, preprocessing, batching, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from omniemo.cli import main
from omniemo.labels import get_labelset
from omniemo.media.synth import write_clip
from omniemo.models.loading import CheckpointError, load_humanomni, save_humanomni
from omniemo.models.processing import R1OMNI_INSTRUCTION, MediaSample, frames_to_pixels, square_pad
from omniemo.models.qwen_omni import load_qwen_omni, patchify_video, save_qwen_omni, write_tiny_qwen_omni
from omniemo.models.tiny import write_tiny_humanomni


@pytest.fixture(scope="module")
def humanomni_dir(tmp_path_factory):
    return write_tiny_humanomni(tmp_path_factory.mktemp("humanomni") / "ckpt")


@pytest.fixture(scope="module")
def humanomni(humanomni_dir):
    return load_humanomni(humanomni_dir, device="cpu")


@pytest.fixture(scope="module")
def qwen_omni_dir(tmp_path_factory):
    return write_tiny_qwen_omni(tmp_path_factory.mktemp("qwen") / "ckpt")


@pytest.fixture(scope="module")
def media():
    rng = np.random.default_rng(0)
    frames = lambda: rng.integers(0, 255, (8, 48, 64, 3), dtype=np.uint8)  # noqa: E731
    audio = lambda s: (0.1 * rng.standard_normal(int(16000 * s))).astype(np.float32)  # noqa: E731
    return {"av": MediaSample(R1OMNI_INSTRUCTION, frames(), audio(2.0)),
            "audio": MediaSample("Which emotion?", None, audio(1.0)),
            "video": MediaSample("Which emotion is shown?", frames(), None)}


# -- parameter names: written out from the published module tree (R1-OMNI.md), not from our code ------------------

def _expected_humanomni_shapes() -> dict[str, tuple]:
    h, v, a, bert = 896, 768, 1280, 768
    out = {}

    def block(prefix, cin, cout):
        out.update({f"{prefix}.conv1.conv.weight": (cout, cin, 1, 1), f"{prefix}.conv1.bn.weight": (cout,),
                    f"{prefix}.conv1.bn.bias": (cout,), f"{prefix}.conv2.conv.weight": (cout, 1, 3, 3),
                    f"{prefix}.conv2.bn.weight": (cout,), f"{prefix}.conv2.bn.bias": (cout,),
                    f"{prefix}.se.fc1.weight": (round(cin / 4), cout, 1, 1), f"{prefix}.se.fc1.bias": (round(cin / 4),),
                    f"{prefix}.se.fc2.weight": (cout, round(cin / 4), 1, 1), f"{prefix}.se.fc2.bias": (cout,),
                    f"{prefix}.conv3.conv.weight": (cout, cout, 1, 1), f"{prefix}.conv3.bn.weight": (cout,),
                    f"{prefix}.conv3.bn.bias": (cout,)})
        if cin != cout:
            out.update({f"{prefix}.downsample.conv.weight": (cout, cin, 1, 1),
                        f"{prefix}.downsample.bn.weight": (cout,), f"{prefix}.downsample.bn.bias": (cout,)})

    p = "model.mm_projector"
    for branch in ("video", "body"):
        block(f"{p}.s1_{branch}.b1", v, h)
        block(f"{p}.s1_{branch}.b2", h, h)
        block(f"{p}.s2_{branch}.b1", h, h)
        block(f"{p}.s2_{branch}.b2", h, h)
        out[f"{p}.sampler_{branch}.0.weight"] = (h, h, 2, 2, 2)
        out[f"{p}.sampler_{branch}.0.bias"] = (h,)
        out.update({f"{p}.readout_{branch}.0.weight": (h, h), f"{p}.readout_{branch}.0.bias": (h,),
                    f"{p}.readout_{branch}.2.weight": (h, h), f"{p}.readout_{branch}.2.bias": (h,)})
    out.update({f"{p}.mlp_2xgelu_face.0.weight": (h, v), f"{p}.mlp_2xgelu_face.0.bias": (h,),
                f"{p}.mlp_2xgelu_face.2.weight": (h, h), f"{p}.mlp_2xgelu_face.2.bias": (h,),
                "model.bert_gate.0.weight": (3584, bert), "model.bert_gate.0.bias": (3584,),
                "model.bert_gate.2.weight": (3, 3584), "model.bert_gate.2.bias": (3,),
                "model.audio_projector.0.weight": (h, a), "model.audio_projector.0.bias": (h,),
                "model.audio_projector.2.weight": (h, h), "model.audio_projector.2.bias": (h,),
                "model.embed_tokens.weight": (151936, h), "model.norm.weight": (h,),
                "model.layers.23.self_attn.q_proj.weight": (h, h), "model.layers.23.self_attn.k_proj.weight": (128, h),
                "model.layers.23.mlp.gate_proj.weight": (4864, h),
                "model.bert_model.embeddings.word_embeddings.weight": (30522, bert),
                "model.bert_model.encoder.layer.11.output.dense.weight": (bert, 3072),
                "model.bert_model.pooler.dense.weight": (bert, bert)})
    return out


def test_full_size_parameter_names_match_the_published_checkpoint():
    from omniemo.models.humanomni import HumanOmniConfig, HumanOmniForCausalLM

    config = HumanOmniConfig(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                             num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True)
    with torch.device("meta"):  # full size, no memory
        model = HumanOmniForCausalLM(config)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = _expected_humanomni_shapes()
    assert {k: state.get(k) for k in expected} == expected
    multimodal = {k for k in state if k.startswith(("model.mm_projector.", "model.bert_gate.", "model.audio_projector."))}
    assert multimodal == {k for k in expected if k.startswith(("model.mm_projector.", "model.bert_gate.",
                                                               "model.audio_projector."))}
    assert not [k for k in state if "tower" in k]  # the towers are never part of the omni checkpoint


# -- preprocessing --------------------------------------------------------------------------------------------

def test_prompt_text_is_the_reference_rendering(humanomni):
    _, proc = humanomni
    text = proc.prompt_text("Which emotion?")
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<vi_start><video><vi_end>\n<au_start><audio><au_end>\nWhich emotion?<|im_end|>\n"
                    "<|im_start|>assistant\n")
    assert "<video>" not in proc.prompt_text("q", video=False) and "<audio>" not in proc.prompt_text("q", audio=False)
    ids = proc.prompt_ids(text)
    assert ids.count(proc.video_token_id) == 392 and ids.count(proc.audio_token_id) == 500
    # placeholders sit where the text puts them: video run first, then audio, the instruction after
    first_v, first_a = ids.index(proc.video_token_id), ids.index(proc.audio_token_id)
    assert ids[first_v:first_v + 392] == [proc.video_token_id] * 392 and first_a > first_v + 392


def test_frames_are_grey_padded_squares_normalised_for_siglip():
    frame = np.full((40, 80, 3), 255, np.uint8)
    square = square_pad(frame)
    assert square.shape == (80, 80, 3) and (square[:20] == 127).all() and (square[20:60] == 255).all()
    pixels = frames_to_pixels(frame[None], 224)
    assert pixels.shape == (1, 3, 224, 224)
    assert torch.allclose(pixels[0, :, 112, 112], torch.ones(3)) and abs(pixels[0, 0, 2, 112] - (127 / 255 - 0.5) / 0.5) < 1e-3


def test_audio_features_are_128_bin_30_second_log_mel(humanomni, media):
    _, proc = humanomni
    feats = proc.audio_features(media["av"].audio)
    assert feats.shape == (128, 3000)
    long = proc.audio_features(np.zeros(16000 * 40, np.float32))  # cut to 30 s
    assert long.shape == (128, 3000)


# -- the model --------------------------------------------------------------------------------------------------

def test_save_load_round_trip_gives_identical_logits(humanomni, humanomni_dir, media, tmp_path):
    model, proc = humanomni
    with torch.no_grad():
        before = model(**proc([media["av"]])).logits
    out = save_humanomni(model, proc, tmp_path / "copy")
    assert not list(out.glob("siglip")) and "model.safetensors" in {p.name for p in out.iterdir()}
    # the towers are not in the omni checkpoint: they are given from their own folders, by option
    again, proc2 = load_humanomni(out, vision_tower=humanomni_dir / "siglip", audio_tower=humanomni_dir / "whisper",
                                  bert=humanomni_dir / "bert", device="cpu")
    with torch.no_grad():
        after = again(**proc2([media["av"]])).logits
    assert torch.equal(before, after)


def test_placeholder_positions_receive_the_media_embeddings(humanomni, media):
    model, proc = humanomni
    batch = proc([media["av"]])
    with torch.no_grad():
        embeds = model.embed_inputs(batch["input_ids"], batch["pixel_values"], batch["input_features"],
                                    batch["bert_input_ids"], batch["bert_attention_mask"])
        video = model.encode_video(batch["pixel_values"], batch["bert_input_ids"], batch["bert_attention_mask"])
        audio = model.encode_audio(batch["input_features"])
        text = model.model.embed_tokens(batch["input_ids"])
    ids = batch["input_ids"][0]
    assert torch.equal(embeds[0, ids == proc.video_token_id], video[0])
    assert torch.equal(embeds[0, ids == proc.audio_token_id], audio[0])
    other = (ids != proc.video_token_id) & (ids != proc.audio_token_id)
    assert torch.equal(embeds[0, other], text[0, other])
    assert video.shape == (1, 392, 64) and audio.shape == (1, 500, 64)


def test_bert_gate_mixes_three_branches_per_sample(humanomni, media):
    model, proc = humanomni
    batch = proc([media["av"], media["video"]])  # two instructions -> two gates
    with torch.no_grad():
        feats = torch.randn(2, 8, 196, 32)
        video, body, face = model.model.mm_projector(feats)
        cls = model.model.bert_model(input_ids=batch["bert_input_ids"],
                                     attention_mask=batch["bert_attention_mask"]).last_hidden_state[:, 0]
        gate = torch.softmax(model.model.bert_gate(cls), -1)
    assert video.shape == body.shape == face.shape == (2, 392, 64)
    assert gate.shape == (2, 3) and torch.allclose(gate.sum(-1), torch.ones(2))
    assert not torch.allclose(gate[0], gate[1])  # the gate depends on the instruction


def test_batched_and_single_greedy_generation_agree(humanomni, media):
    from omniemo.models.backend import OmniPredictor, HumanOmniPredictor

    model, proc = humanomni
    predictor = HumanOmniPredictor.__new__(HumanOmniPredictor)
    OmniPredictor.__init__(predictor, model, proc, max_new_tokens=6)
    samples = [media["av"], media["audio"], media["video"]]
    together = predictor.generate(predictor.prepare(samples))
    alone = [predictor.generate(predictor.prepare([s]))[0] for s in samples]
    assert together == alone
    asking = HumanOmniPredictor.__new__(HumanOmniPredictor)
    OmniPredictor.__init__(asking, model, proc, instruction="eval")
    assert asking.instruction.startswith("As an emotional recognition expert, in the video")
    # and the label scores: a distribution over the label set, the same batched or alone
    probs = predictor.label_probabilities(predictor.prepare(samples), together, get_labelset("mer2023"))
    assert all(abs(sum(p.values()) - 1) < 1e-4 and len(p) == 6 for p in probs)


def test_missing_tower_is_a_clear_error(humanomni_dir, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "ckpt"
    shutil.copytree(humanomni_dir, copy, ignore=shutil.ignore_patterns("siglip"))
    monkeypatch.delenv("OMNIEMO_VISION_TOWER", raising=False)
    with pytest.raises(CheckpointError, match="vision tower.*OMNIEMO_VISION_TOWER"):
        load_humanomni(copy, device="cpu")
    # audio-only loading never needs the vision tower; the environment variable supplies it
    load_humanomni(copy, device="cpu", modalities=("audio",))
    monkeypatch.setenv("OMNIEMO_VISION_TOWER", str(humanomni_dir / "siglip"))
    load_humanomni(copy, device="cpu")


# -- Qwen2.5-Omni thinker --------------------------------------------------------------------------------------

def test_video_patches_follow_the_qwen_layout():
    from transformers import Qwen2VLImageProcessorPil

    rng = np.random.default_rng(1)
    frame = rng.standard_normal((3, 56, 84)).astype(np.float32)
    ours, grid = patchify_video(np.stack([frame, frame]))
    theirs, gh, gw = Qwen2VLImageProcessorPil().patchify(frame, patch_size=14, merge_size=2, temporal_patch_size=2)
    assert grid == (1, gh, gw) and np.array_equal(ours, theirs)  # a still video = an image, in transformers
    odd, grid3 = patchify_video(np.stack([frame, frame, frame]))  # odd count: last frame repeated
    assert grid3 == (2, 4, 6) and odd.shape == (48, 3 * 2 * 14 * 14)


def test_qwen_omni_thinker_runs_each_modality_subset_and_batches(qwen_omni_dir, media):
    from omniemo.models.backend import OmniPredictor, QwenOmniPredictor

    model, proc = load_qwen_omni(qwen_omni_dir, device="cpu")
    predictor = QwenOmniPredictor.__new__(QwenOmniPredictor)
    OmniPredictor.__init__(predictor, model, proc, max_new_tokens=5)
    samples = [media["av"], media["audio"], media["video"]]
    batch = proc(samples)
    assert batch["video_grid_thw"].shape == (2, 3) and batch["input_features"].shape[0] == 2
    n_audio = (batch["input_ids"][0] == proc.audio_token_id).sum().item()
    assert n_audio == 50  # 2 s of audio: 200 mel frames -> 50 embeddings
    together = predictor.generate(predictor.prepare(samples))
    alone = [predictor.generate(predictor.prepare([s]))[0] for s in samples]
    assert together == alone


def test_qwen_omni_round_trip(qwen_omni_dir, media, tmp_path):
    model, proc = load_qwen_omni(qwen_omni_dir, device="cpu")
    with torch.no_grad():
        before = model(**proc([media["av"]])).logits
    save_qwen_omni(model, proc, tmp_path / "copy")
    again, proc2 = load_qwen_omni(tmp_path / "copy", device="cpu")
    with torch.no_grad():
        assert torch.equal(before, again(**proc2([media["av"]])).logits)


# -- the CLI ---------------------------------------------------------------------------------------------------

def test_tiny_checkpoints_run_through_analyze_and_eval(tmp_path):
    runner = CliRunner()
    clips = [write_clip(tmp_path / f"c{i}.mp4", 1.0, size=(96, 64)) for i in range(3)]
    audio_only = write_clip(tmp_path / "a.wav", 1.0)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    manifest = tmp_path / "manifest.jsonl"
    rows = [{"path": str(c), "label": lab} for c, lab in zip(clips + [audio_only, tmp_path / "broken.mp4"],
                                                                ["happy", "sad", "angry", "neutral", "fear"])]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for kind in ("humanomni", "qwen-omni"):
        ckpt = tmp_path / kind
        result = runner.invoke(main, ["models", "tiny", kind, str(ckpt)])
        assert result.exit_code == 0, result.output
        result = runner.invoke(main, ["analyze", str(clips[0]), str(audio_only), "--backend", kind, "--model-path",
                                      str(ckpt), "--max-new-tokens", "4", "--json", "--labels", "ravdess"])
        assert result.exit_code == 0, result.output
        out = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        assert [o["backend"] for o in out] == [kind, kind]
        assert out[1]["missing_modalities"] == ["video"] and len(out[0]["probabilities"]) == 8
        run = tmp_path / f"run-{kind}"
        result = runner.invoke(main, ["eval", "--dataset", "manifest", "--root", str(manifest), "--model", kind,
                                      "--model-path", str(ckpt), "--max-new-tokens", "4", "--batch-size", "2",
                                      "--out", str(run), "--json"])
        assert result.exit_code == 0, result.output
        lines = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
        assert len(lines) == 5 and sum("error" in x for x in lines) == 1  # the broken file alone fails
    result = runner.invoke(main, ["analyze", str(clips[0]), "--backend", "humanomni"])
    assert result.exit_code == 2 and "--model-path" in result.output

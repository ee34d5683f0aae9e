"""Tiny random checkpoints in the real layouts, for smoke tests (`omniemo models tiny ...`) and our tests.

Every part is built from a config with random weights: a byte-level BPE tokenizer trained on a few hundred
words (the prompts, the emotion vocabularies, the answer tags), a Qwen2 LLM of 2 layers, SigLIP/Whisper/BERT
of 1-2 layers. The folders are laid out as the published ones, so the same loading code runs on them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from omniemo.labels import LABEL_SETS
from omniemo.models.processing import AUDIO_PLACEHOLDER, EVAL_INSTRUCTION, R1OMNI_INSTRUCTION, VIDEO_PLACEHOLDER

TINY_LABEL_SETS = ("dfew", "mafw", "ravdess", "cremad", "mer2023", "ased", "urdu")

# Qwen2.5's chat template, reduced to what a text conversation needs (system turn added when absent).
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if loop.first and message['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
OMNI_SPECIALS = ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|IMAGE|>", "<|VIDEO|>", "<|vision_bos|>",
                 "<|vision_eos|>"]


def _corpus() -> list[str]:
    # the sets the tiny models were first built with: a label set added later leaves their vocabulary as it was
    words = sorted({w for name in TINY_LABEL_SETS for w in LABEL_SETS[name].labels})
    lines = [R1OMNI_INSTRUCTION, EVAL_INSTRUCTION, "<vi_start><vi_end><au_start><au_end>",
             "system user assistant You are a helpful assistant.", " ".join(words)]
    lines += [f"<think>The face and the voice suggest {w}.</think>\n<answer>{w}</answer>" for w in words]
    lines.append("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"()<>/-_\n")
    return lines


def tiny_qwen_tokenizer(extra_specials: list[str] = (), vocab_size: int = 600):
    """A Qwen2Tokenizer (byte-level BPE, ChatML template) trained on the tiny corpus."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(_corpus(), trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = Qwen2Tokenizer(vocab=model["vocab"], merges=merges, unk_token=None, eos_token="<|im_end|>",
                         pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIALS + list(extra_specials)})
    tok.chat_template = CHATML_TEMPLATE
    return tok


# Dimensions of the random checkpoints: "tiny" for tests, "0.5b" = HumanOmni-0.5B's (Qwen2.5-0.5B, SigLIP base,
# Whisper-large-v3 encoder, bert-base) for measuring speed and memory at full size.
SIZES = {
    "tiny": {"llm": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2),
             "siglip": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
             "whisper": dict(d_model=32, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64),
             "bert": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
             "vocab": None},
    "0.5b": {"llm": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2),
             "siglip": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
             "whisper": dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120),
             "bert": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
             "vocab": 151936},
}


def tiny_bert_dir(out: Path, seed: int = 0, size: str = "tiny") -> Path:
    """A BERT folder: config.json and a word-piece vocab.txt (the gate's tokenizer)."""
    from transformers import BertConfig, BertTokenizer

    out.mkdir(parents=True, exist_ok=True)
    words = sorted({w.lower().strip(".,;:?!'\"") for line in _corpus() for w in line.split()} - {""})
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()<>/-_")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + [f"##{c}" for c in chars]
    vocab += [w for w in words if w not in vocab]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(vocab_file=str(out / "vocab.txt")).save_pretrained(out)
    BertConfig(vocab_size=len(vocab) if size == "tiny" else 30522, max_position_embeddings=512,
               **SIZES[size]["bert"]).save_pretrained(out)
    return out


def tiny_siglip_dir(out: Path, seed: int = 0, size: str = "tiny") -> Path:
    from transformers import SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(seed)
    config = SiglipVisionConfig(image_size=224, patch_size=16, **SIZES[size]["siglip"])
    SiglipVisionModel(config).save_pretrained(out)
    return out


def tiny_whisper_dir(out: Path, seed: int = 0, n_mels: int = 128, size: str = "tiny") -> Path:
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForAudioClassification

    torch.manual_seed(seed)
    config = WhisperConfig(num_mel_bins=n_mels, decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64,
                           max_source_positions=1500, vocab_size=128, pad_token_id=0, **SIZES[size]["whisper"],
                           bos_token_id=1, eos_token_id=2, decoder_start_token_id=3)
    WhisperForAudioClassification(config).save_pretrained(out)
    WhisperFeatureExtractor(feature_size=n_mels).save_pretrained(out)
    return out


def write_tiny_humanomni(out_dir: str | Path, seed: int = 0, size: str = "tiny") -> Path:
    """A HumanOmni checkpoint folder with random weights; towers and BERT in sub-folders it names.

    ``size="0.5b"`` gives HumanOmni-0.5B's dimensions (about 1.35 B parameters with the towers; 5.4 GB).
    """
    from transformers import BertTokenizer, WhisperFeatureExtractor

    from omniemo.models.humanomni import HumanOmniConfig, HumanOmniForCausalLM
    from omniemo.models.loading import save_humanomni
    from omniemo.models.processing import HumanOmniProcessor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dims = SIZES[size]
    tiny_siglip_dir(out / "siglip", seed, size=size)
    tiny_whisper_dir(out / "whisper", seed, size=size)
    bert_dir = tiny_bert_dir(out / "bert", seed, size=size)
    tokenizer = tiny_qwen_tokenizer([VIDEO_PLACEHOLDER, AUDIO_PLACEHOLDER])
    bert_config = json.loads((bert_dir / "config.json").read_text())
    processor = HumanOmniProcessor(tokenizer, BertTokenizer.from_pretrained(bert_dir),
                                   WhisperFeatureExtractor(feature_size=128))
    config = HumanOmniConfig(
        # relative folders: resolved inside the checkpoint (published configs carry hub ids or local paths)
        mm_vision_tower="siglip", mm_audio_tower="whisper", bert_model="bert",
        mm_hidden_size=dims["siglip"]["hidden_size"], audio_hidden_size=dims["whisper"]["d_model"], num_frames=8,
        bert_config={k: v for k, v in bert_config.items() if k not in ("architectures", "transformers_version")},
        video_token_id=processor.video_token_id, audio_token_id=processor.audio_token_id,
        vocab_size=dims["vocab"] or len(tokenizer) + 64 - len(tokenizer) % 64, max_position_embeddings=32768,
        **dims["llm"],
        rope_theta=1e6, tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    torch.manual_seed(seed)
    model = HumanOmniForCausalLM(config)
    return save_humanomni(model, processor, out)

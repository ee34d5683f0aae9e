"""HumanOmni (the architecture of HumanOmni-0.5B, EMER-SFT, MAFW-DFEW-SFT and R1-Omni) from transformers parts.

A Qwen2 causal LM whose ``model`` also holds the multimodal parts, under the published checkpoints' names:

- ``model.mm_projector``: the "all_in_one_small" visual projector. Three branches over the same SigLIP patch
  features (hidden_states[-2], 14x14 patches per frame): video and body (RegStage -> Conv3d -> RegStage -> MLP)
  and face (2-layer GELU MLP, then bilinear 2x2 pooling to 7x7). Each gives frames x 7 x 7 tokens.
- ``model.bert_model`` + ``model.bert_gate``: the [CLS] vector of the instruction (BERT) gives softmax weights
  that mix the three branches, per sample.
- ``model.audio_projector``: Whisper encoder states (1500 per 30 s) average-pooled by 3 -> 500 tokens -> MLP.
- the towers: SiglipVisionModel and the Whisper encoder, frozen and loaded from their own folders, never saved in
  the omni checkpoint (see ``omniemo.models.loading``).

Placeholders: the processor expands ``<video>`` and ``<audio>`` into one token per embedding (392 and 500), so
batches are ordinary padded tensors; ``embed_inputs`` writes the media embeddings over those positions.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import BertConfig, BertModel, Qwen2Config, Qwen2ForCausalLM, Qwen2Model

from omniemo.models.regstage import RegStage

MODEL_TYPE = "HumanOmni_qwen2"


class HumanOmniConfig(Qwen2Config):
    """Qwen2 dimensions plus the multimodal keys of a published HumanOmni ``config.json``."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        mm_vision_tower: str | None = "google/siglip-base-patch16-224",
        mm_audio_tower: str | None = "openai/whisper-large-v3",
        mm_projector_type: str = "all_in_one_small",
        mm_audio_projector_type: str = "mlp2x_gelu",
        mm_hidden_size: int = 768,
        audio_hidden_size: int = 1280,
        mm_vision_select_layer: int = -2,
        num_frames: int = 8,
        bert_config: dict | None = None,
        video_token_id: int | None = None,
        audio_token_id: int | None = None,
        **kwargs,
    ):
        self.mm_vision_tower = mm_vision_tower
        self.mm_audio_tower = mm_audio_tower
        self.mm_projector_type = mm_projector_type
        self.mm_audio_projector_type = mm_audio_projector_type
        self.mm_hidden_size = mm_hidden_size
        self.audio_hidden_size = audio_hidden_size
        self.mm_vision_select_layer = mm_vision_select_layer
        self.num_frames = num_frames
        # BERT's own dimensions; None means bert-base-uncased (the published checkpoints' gate encoder)
        self.bert_config = bert_config
        # Our placeholder token ids (the processor sets them from the tokenizer; not in published configs)
        self.video_token_id = video_token_id
        self.audio_token_id = audio_token_id
        super().__init__(**kwargs)


def mlp_2x_gelu(in_dim: int, out_dim: int) -> nn.Sequential:
    """Linear -> GELU -> Linear: parameter names ``0.*`` and ``2.*`` as in the reference."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))


class AllInOneProjector(nn.Module):
    """The three visual branches. ``forward(features (B, T, P, C)) -> video, body, face``, each (B, T*(s/2)^2, H)."""

    def __init__(self, vision_dim: int, hidden: int, depth: int = 2):
        super().__init__()
        for branch in ("video", "body"):
            setattr(self, f"s1_{branch}", RegStage(depth, vision_dim, hidden))
            # kernel 2 in time with one frame of padding keeps one output per input frame (the first T are kept)
            setattr(self, f"sampler_{branch}", nn.Sequential(
                nn.Conv3d(hidden, hidden, kernel_size=(2, 2, 2), stride=(1, 2, 2), padding=(1, 0, 0)), nn.SiLU()))
            setattr(self, f"s2_{branch}", RegStage(depth, hidden, hidden))
            setattr(self, f"readout_{branch}", mlp_2x_gelu(hidden, hidden))
        self.mlp_2xgelu_face = mlp_2x_gelu(vision_dim, hidden)

    def _spatio_temporal(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        b, t, p, c = x.shape
        side = int(round(p ** 0.5))
        x = x.reshape(b * t, side, side, c).permute(0, 3, 1, 2)
        x = getattr(self, f"s1_{branch}")(x)
        x = x.reshape(b, t, *x.shape[1:]).permute(0, 2, 1, 3, 4)  # (B, H, T, s, s)
        x = getattr(self, f"sampler_{branch}")(x)[:, :, :t]  # (B, H, T, s/2, s/2)
        hidden, half = x.shape[1], x.shape[3]
        x = x.permute(0, 2, 1, 3, 4).reshape(b * t, hidden, half, half)
        x = getattr(self, f"s2_{branch}")(x)
        x = x.reshape(b, t, hidden, half * half).permute(0, 1, 3, 2)  # tokens ordered (t, h, w)
        x = x.reshape(b, t * half * half, hidden)
        return getattr(self, f"readout_{branch}")(x)

    def _face(self, x: torch.Tensor) -> torch.Tensor:
        b, t, p, c = x.shape
        side = int(round(p ** 0.5))
        y = self.mlp_2xgelu_face(x.reshape(b * t, p, c))
        y = y.reshape(b * t, side, side, -1).permute(0, 3, 1, 2)
        y = F.interpolate(y, size=((side + 1) // 2, (side + 1) // 2), mode="bilinear")
        return y.permute(0, 2, 3, 1).reshape(b, -1, y.shape[1])

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self._spatio_temporal(features, "video"), self._spatio_temporal(features, "body"), self._face(features)


def bert_config_of(config: HumanOmniConfig) -> BertConfig:
    return BertConfig(**config.bert_config) if config.bert_config else BertConfig()  # BertConfig() = bert-base dims


class HumanOmniModel(Qwen2Model):
    """Qwen2Model plus the projectors, the BERT gate and (unsaved) towers."""

    config_class = HumanOmniConfig

    def __init__(self, config: HumanOmniConfig):
        super().__init__(config)
        if config.mm_projector_type != "all_in_one_small":
            raise ValueError(f"mm_projector_type {config.mm_projector_type!r} is not supported (all_in_one_small is)")
        if config.mm_audio_projector_type != "mlp2x_gelu":
            raise ValueError(f"mm_audio_projector_type {config.mm_audio_projector_type!r} is not supported (mlp2x_gelu is)")
        self.mm_projector = AllInOneProjector(config.mm_hidden_size, config.hidden_size)
        bert = bert_config_of(config)
        self.bert_model = BertModel(bert)
        self.bert_gate = nn.Sequential(nn.Linear(bert.hidden_size, 3584), nn.GELU(), nn.Linear(3584, 3))
        self.audio_projector = mlp_2x_gelu(config.audio_hidden_size, config.hidden_size)


class HumanOmniForCausalLM(Qwen2ForCausalLM):
    config_class = HumanOmniConfig
    # names a published checkpoint might carry for the towers; they are loaded from the towers' own folders
    TOWER_PREFIXES = ("model.vision_tower.", "model.audio_tower.")

    def __init__(self, config: HumanOmniConfig):
        super().__init__(config)
        self.model = HumanOmniModel(config)
        # The frozen towers live outside the module tree: not in the state dict or training checkpoints, not
        # wrapped or sharded by DDP/FSDP/ZeRO, yet moved and cast with the model (see _apply).
        self.__dict__["towers"] = {"vision": None, "audio": None}
        self.post_init()

    # -- towers -------------------------------------------------------------------------------------------------
    def attach_towers(self, vision_tower: nn.Module | None, audio_tower: nn.Module | None) -> None:
        """Attach SiglipVisionModel and the Whisper encoder; both are frozen (the reference never trains them)."""
        for tower in (vision_tower, audio_tower):
            if tower is not None:
                tower.requires_grad_(False)
                tower.eval()
        self.towers.update(vision=vision_tower, audio=audio_tower)

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        for tower in self.__dict__.get("towers", {}).values():
            if tower is not None:
                tower._apply(fn, *args, **kwargs)
        return self

    # -- media encoders -----------------------------------------------------------------------------------------
    def encode_video(self, pixel_values: torch.Tensor, bert_input_ids: torch.Tensor,
                     bert_attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, 224, 224) -> (B, T*49, hidden), branches mixed by the instruction's BERT gate."""
        tower = self.towers["vision"]
        if tower is None:
            raise RuntimeError("no vision tower attached: load the model with a vision tower to use video")
        b, t = pixel_values.shape[:2]
        with torch.no_grad():
            out = tower(pixel_values.flatten(0, 1).to(tower.dtype), output_hidden_states=True)
            feats = out.hidden_states[self.config.mm_vision_select_layer]
        feats = feats.reshape(b, t, *feats.shape[1:]).to(self.model.mm_projector.mlp_2xgelu_face[0].weight.dtype)
        video, body, face = self.model.mm_projector(feats)
        cls = self.model.bert_model(input_ids=bert_input_ids, attention_mask=bert_attention_mask).last_hidden_state[:, 0]
        gate = torch.softmax(self.model.bert_gate(cls), dim=-1).to(video.dtype)  # (B, 3)
        return gate[:, 0, None, None] * video + gate[:, 1, None, None] * body + gate[:, 2, None, None] * face

    def encode_audio(self, input_features: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, 3000) log-mel -> (B, 500, hidden)."""
        tower = self.towers["audio"]
        if tower is None:
            raise RuntimeError("no audio tower attached: load the model with an audio tower to use audio")
        with torch.no_grad():
            states = tower(input_features.to(tower.dtype)).last_hidden_state  # (B, 1500, C)
        pooled = F.avg_pool1d(states.transpose(1, 2), kernel_size=3, stride=3).transpose(1, 2)
        return self.model.audio_projector(pooled.to(self.model.audio_projector[0].weight.dtype))

    def embed_inputs(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None,
                     input_features: torch.Tensor | None = None, bert_input_ids: torch.Tensor | None = None,
                     bert_attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings with the media embeddings written over their placeholder positions.

        ``pixel_values`` / ``input_features`` hold only the samples that have that modality, in batch order.
        """
        embeds = self.model.embed_tokens(input_ids)
        for token_id, media in ((self.config.video_token_id, pixel_values), (self.config.audio_token_id, input_features)):
            mask = input_ids == token_id
            if media is None:
                if mask.any():
                    raise ValueError("the prompt has media placeholders but no media was given")
                continue
            if token_id == self.config.video_token_id:
                feats = self.encode_video(media, bert_input_ids, bert_attention_mask)
            else:
                feats = self.encode_audio(media)
            if int(mask.sum()) != feats.shape[0] * feats.shape[1]:
                raise ValueError(f"{int(mask.sum())} placeholder positions for {feats.shape[0]}x{feats.shape[1]} embeddings")
            embeds = embeds.masked_scatter(mask.unsqueeze(-1), feats.to(embeds.dtype))
        return embeds

    def forward(self, input_ids=None, attention_mask=None, pixel_values=None, input_features=None,
                bert_input_ids=None, bert_attention_mask=None, inputs_embeds=None, **kwargs):
        if inputs_embeds is None and input_ids is not None:
            inputs_embeds = self.embed_inputs(input_ids, pixel_values, input_features, bert_input_ids, bert_attention_mask)
        return super().forward(input_ids=None, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)

    @torch.no_grad()
    def generate_from_media(self, input_ids, attention_mask, pixel_values=None, input_features=None,
                            bert_input_ids=None, bert_attention_mask=None, **generate_kwargs) -> torch.Tensor:
        """Generate continuations (new tokens only); media is embedded once, then decoding uses the KV cache."""
        embeds = self.embed_inputs(input_ids, pixel_values, input_features, bert_input_ids, bert_attention_mask)
        return super().generate(inputs_embeds=embeds, attention_mask=attention_mask, **generate_kwargs)


def _register() -> None:
    """Let transformers' Auto classes (and AutoTokenizer's config lookup) know the published model_type."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        AutoConfig.register(MODEL_TYPE, HumanOmniConfig)
        AutoModelForCausalLM.register(HumanOmniConfig, HumanOmniForCausalLM)
    except ValueError:  # already registered (module reloaded)
        pass


_register()

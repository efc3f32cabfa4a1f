"""Spatial-temporal diffusion transformer (ST-DiT) over latent spacetime patches.

DiT (Peebles & Xie 2023) with the factorised attention of Latte (Ma et al. 2024) and Open-Sora
(Zheng et al. 2024): each block attends within a frame, then across frames at one spatial
position, then to the prompt's token features (cross-attention as in PixArt-alpha, Chen et al.
2023), then an MLP. The adaLN-Zero timestep conditioning is per frame (Open-Sora 1.2), so
frames that are given as conditioning are marked clean (t = 0) while the others are denoised.

Dims: B batch, T frames, C latent channels, h x w latent size, N patches per frame, L text
tokens, D width, H heads, S a batch of sequences (B*T for spatial attention, B*N for
temporal) and M the keys each attends to.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from generator import world
from generator.checkpoint import read_weights, save_weights


@dataclass(frozen=True)
class DiTConfig:
    """The model's shape, and what it makes: clips of frame_size x frame_size frames at fps (a checkpoint
    without these fields was trained on the synthetic world, and makes its frames)."""

    latent_channels: int = 8
    latent_size: int = 8  # h = w of the latent frames
    frames: int = 16  # most frames a clip has (temporal positions)
    patch: int = 2  # 8x8 latents -> 4x4 = 16 tokens per frame
    width: int = 192
    depth: int = 4  # ST blocks, each a spatial + temporal attention pair
    heads: int = 4
    mlp_ratio: float = 4.0
    text_width: int = 128
    text_layers: int = 2
    context_length: int = 32
    vocab_size: int = 49408  # CLIP's BPE vocabulary
    vocabulary: tuple[int, ...] | None = None  # the BPE ids with a row of their own (others share one); None: all
    time_shift: float = 1.0  # times trained and sampled on, shifted toward noise (flow.shift_times); 1 = none
    guidance_start: float = 1.0  # full guidance at and below this time when sampling (flow.guidance_at); 1: always
    early_guidance: float = 1.0  # the share of the guidance's strength above guidance_start; 1: full
    frame_guidance: float = 0.0  # how strongly whole given frames guide a window (flow.guided_velocity); 0: not
    guidance: float = 4.0  # the guidance scale a request that names none samples with (`guidance_for`)
    continue_guidance: float = 4.0  # the same for continuing a clip, where the given frames already say much
    candidates: int = 1  # starting noises searched for the motion a prompt asks (pipeline._search); 1: none
    wayless_candidates: int | None = None  # the same for a motion naming no way (a fall, a collision); None: candidates
    probe_time: float = 0.92  # each of those runs the steps above this time before the search picks one
    seam_candidates: int = 1  # clips a window continuing given frames finishes, keeping the best seam; 1: one
    search_rounds: int = 1  # rounds of candidates a search whose check none passes draws (flow.NoiseSearch)
    frame_prompt: bool = False  # the prompt also conditions each frame's adaLN, by frame (FramePrompt)
    spacetime_prompt: bool = False  # the prompt also adds to each token, by frame and place (SpacetimePrompt)
    frame_size: int = world.SIZE  # frames are frame_size x frame_size pixels (the autoencoder's)
    fps: int = world.FPS  # frames per second of the clips it learned from
    autoencoder: str = "tiny"  # the autoencoder whose latents it models (AE_CONFIGS): its file is beside this one

    @property
    def sampling(self) -> dict:
        """How the model samples (keywords of `flow.sample`): times spaced as it trained, the guidance
        interval it samples best with, and how strongly given frames guide."""
        return {"time_shift": self.time_shift, "guidance_start": self.guidance_start,
                "early_guidance": self.early_guidance, "frame_guidance": self.frame_guidance}

    def guidance_for(self, mode: str) -> float:
        """The guidance scale the model samples a mode with when a request names none: `continue_guidance` to
        continue a clip, `guidance` otherwise."""
        return self.continue_guidance if mode == "continue" else self.guidance

    @property
    def table_rows(self) -> int:
        """Rows of the token table: one per known id and one for every other id, or one per BPE id."""
        return self.vocab_size if self.vocabulary is None else len(self.vocabulary) + 1


DIT_CONFIGS = {
    "tiny": DiTConfig(width=192, depth=4, heads=4, text_width=128, text_layers=2, continue_guidance=2.0,
                      candidates=8, wayless_candidates=4, frame_guidance=2.0, seam_candidates=3,
                      search_rounds=2),  # as the shipped file samples
    "base": DiTConfig(width=512, depth=12, heads=8, text_width=512, text_layers=4),  # accelerator
    # tiny's transformer on the "fine" autoencoder's 16 x 16 x 4 latents, 4 x 4 patches: the same 16 tokens a
    # frame, each over 4 px cells, which keep a square's corners (the tiny autoencoder's 8 px cells round them)
    "fine": DiTConfig(latent_channels=4, latent_size=16, patch=4, width=192, depth=4, heads=4, text_width=128,
                      text_layers=2, autoencoder="fine"),
    "test": DiTConfig(latent_channels=4, latent_size=4, frames=4, width=32, depth=2, heads=2,
                      text_width=32, text_layers=1, context_length=8),  # unit tests
}


@functools.cache
def _clip_tokenizer():
    import open_clip

    return open_clip.get_tokenizer("ViT-B-32")


def tokenize(texts: list[str], context_length: int = 32) -> torch.Tensor:
    """CLIP BPE ids (B, L), 0-padded, with start and end tokens."""
    return _clip_tokenizer()(texts, context_length=context_length)


def vocabulary_of(texts: list[str]) -> tuple[int, ...]:
    """The BPE ids (sorted) that the texts are made of, start and end tokens included."""
    ids = tokenize(texts, context_length=77).flatten().tolist() if texts else []
    return tuple(sorted(set(ids) - {0}))


# ---------------------------------------------------------------------------------------------
# Helpers and embedders


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def sincos(positions: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Fixed sinusoidal features (Vaswani et al. 2017), (P,) -> (P, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=positions.device) / half)
    args = positions.float()[:, None] * freqs[None]  # (P, dim/2)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def spatial_positions(grid: int, dim: int) -> torch.Tensor:
    """2D sinusoidal positions of a grid x grid of patches, (N, dim): half for y, half for x."""
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    return torch.cat([sincos(ys.flatten(), dim // 2), sincos(xs.flatten(), dim // 2)], dim=-1)


class TimestepEmbedder(nn.Module):
    """Times in [0, 1] -> vectors: sinusoidal features of 1000 t, then an MLP (DiT)."""

    def __init__(self, width: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        freqs = sincos(t.flatten() * 1000, self.freq_dim).to(t.dtype)  # (B*T, F)
        return self.mlp(freqs).view(*t.shape, -1)  # (..., D)


class Attention(nn.Module):
    """Multi-head attention of x over a context (x itself when None), with a key mask."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x, context=None, mask=None) -> torch.Tensor:
        S, N, D = x.shape
        context = x if context is None else context
        q = self.q(x).view(S, N, self.heads, -1).transpose(1, 2)  # (S, H, N, D/H)
        kv = self.kv(context).view(S, context.shape[1], 2, self.heads, -1)  # (S, M, 2, H, D/H)
        k, v = kv.permute(2, 0, 3, 1, 4)  # 2 x (S, H, M, D/H)
        attn_mask = None if mask is None else mask[:, None, None, :]  # (S, 1, 1, M), True = attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (S, H, N, D/H)
        return self.proj(out.transpose(1, 2).reshape(S, N, D))


def mlp(width: int, ratio: float) -> nn.Sequential:
    hidden = int(width * ratio)
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))


class TextBlock(nn.Module):
    """A pre-norm transformer layer over the prompt's tokens."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(width), Attention(width, heads)
        self.norm2, self.mlp = nn.LayerNorm(width), mlp(width, mlp_ratio)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask=mask)
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    """CLIP BPE ids -> token features (B, L, D) and a key mask, plus a learned null prompt."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        L, E = config.context_length, config.text_width
        self.token_embedding = nn.Embedding(config.table_rows, E)
        self.register_buffer("rows", table_rows_of(config), persistent=False)  # BPE id -> table row
        self.positions = nn.Parameter(torch.zeros(L, E))
        self.blocks = nn.ModuleList(TextBlock(E, config.heads, config.mlp_ratio) for _ in range(config.text_layers))
        self.norm = nn.LayerNorm(E)
        self.proj = nn.Linear(E, config.width)
        self.null_prompt = nn.Parameter(torch.zeros(L, config.width))  # "no prompt", for CFG

    def forward(self, tokens: torch.Tensor, drop: torch.Tensor | None = None):
        """Features (B, L, D) and mask (B, L), True = a real token; dropped prompts become null."""
        L = tokens.shape[1]
        mask = tokens != 0  # CLIP's tokenizer pads with 0
        x = self.token_embedding(self.rows[tokens]) + self.positions[:L]  # (B, L, E)
        for block in self.blocks:
            x = block(x, mask)
        x = self.proj(self.norm(x))  # (B, L, D)
        if drop is not None:
            x = torch.where(drop[:, None, None], self.null_prompt[:L].to(x.dtype), x)
            mask = mask | drop[:, None]  # the null prompt uses every position
        return x, mask


def table_rows_of(config: DiTConfig) -> torch.Tensor:
    """(vocab_size,) the token table's row of each BPE id: its own (1..) for known ids, 0 for the rest."""
    if config.vocabulary is None:
        return torch.arange(config.vocab_size)
    rows = torch.zeros(config.vocab_size, dtype=torch.long)
    rows[list(config.vocabulary)] = torch.arange(1, len(config.vocabulary) + 1)
    return rows


def pooled_prompt(context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
    """(B, D): the mean of the prompt's real tokens' features (B, L, D) under their mask (B, L)."""
    keep = context_mask[..., None].to(context.dtype)
    return (context * keep).sum(1) / keep.sum(1).clamp(min=1)


class FramePrompt(nn.Module):
    """The prompt's say on each frame: the pooled prompt and the frame's position -> a term of that
    frame's adaLN conditioning. Cross-attention gives every frame the same prompt, so a prompt can set
    where an object is but hardly how that place changes over frames; this term can differ by frame.
    Its output layer starts at zero, so adding it to a trained model changes nothing at first."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        D = config.width
        self.mlp = nn.Sequential(nn.Linear(2 * D, D), nn.SiLU(), nn.Linear(D, D))

    def forward(self, context: torch.Tensor, context_mask: torch.Tensor, frame_pos: torch.Tensor) -> torch.Tensor:
        """(B, T, D) from prompt features (B, L, D), their mask (B, L) and frame positions (T, D)."""
        pooled = pooled_prompt(context, context_mask)
        B, T = pooled.shape[0], frame_pos.shape[0]
        both = torch.cat([pooled[:, None].expand(B, T, -1), frame_pos[None].expand(B, T, -1).to(pooled.dtype)], -1)
        return self.mlp(both)


class SpacetimePrompt(nn.Module):
    """The prompt's say on each place in each frame: an MLP over the pooled prompt, the frame's
    position and the patch's position -> a term added to that token before the blocks.

    "Moving left" means "on the right early, on the left late": a product of prompt, time and place.
    The blocks see positions only as sums (spatial + temporal embeddings), and the world's horizontal
    motions look the same run backwards, so nothing in training makes them learn that product; this
    term states it directly, as a prior over where the object is in each frame that the blocks then
    fit to the clip. The first layer is a sum of three linear maps (the MLP of their concatenation,
    computed without building B x T x N concatenations); the output layer starts at zero.
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        D = config.width
        self.prompt, self.frame, self.place = nn.Linear(D, D), nn.Linear(D, D, bias=False), nn.Linear(D, D, bias=False)
        self.out = nn.Linear(D, D)

    def forward(self, context: torch.Tensor, context_mask: torch.Tensor, frame_pos: torch.Tensor,
                place_pos: torch.Tensor) -> torch.Tensor:
        """(B, T, N, D) from prompt features (B, L, D) and mask (B, L), frame positions (T, D) and
        patch positions (N, D)."""
        dtype = context.dtype
        hidden = (self.prompt(pooled_prompt(context, context_mask))[:, None, None]
                  + self.frame(frame_pos.to(dtype))[None, :, None] + self.place(place_pos.to(dtype))[None, None])
        return self.out(F.silu(hidden))


class PatchEmbed(nn.Module):
    """Per-frame patchify: latents (B, T, C, h, w) -> tokens (B, T, N, D)."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.proj = nn.Conv2d(config.latent_channels, config.width, config.patch, stride=config.patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T = x.shape[:2]
        x = self.proj(x.flatten(0, 1))  # (B*T, D, h/p, w/p)
        return x.flatten(2).transpose(1, 2).view(B, T, -1, x.shape[1])  # (B, T, N, D)


# ---------------------------------------------------------------------------------------------
# The block, the final layer and the model


class STBlock(nn.Module):
    """Spatial attention -> temporal attention -> cross-attention to text -> MLP, adaLN-Zero."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        D, H = config.width, config.heads
        self.norm_s, self.attn_s = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6), Attention(D, H)
        self.norm_t, self.attn_t = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6), Attention(D, H)
        self.norm_c, self.cross = nn.LayerNorm(D), Attention(D, H)
        self.norm_m, self.mlp = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6), mlp(D, config.mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 9 * D))

    def forward(self, x, c, context, context_mask, temporal_pos=None) -> torch.Tensor:
        B, T, N, D = x.shape
        mods = self.adaLN_modulation(c)[:, :, None].chunk(9, dim=-1)  # 9 x (B, T, 1, D)
        shift_s, scale_s, gate_s, shift_t, scale_t, gate_t, shift_m, scale_m, gate_m = mods
        h = modulate(self.norm_s(x), shift_s, scale_s).reshape(B * T, N, D)
        x = x + gate_s * self.attn_s(h).view(B, T, N, D)
        if temporal_pos is not None:
            x = x + temporal_pos  # (T, 1, D), before the first temporal attention (Latte, Open-Sora)
        h = modulate(self.norm_t(x), shift_t, scale_t).transpose(1, 2).reshape(B * N, T, D)
        x = x + gate_t * self.attn_t(h).view(B, N, T, D).transpose(1, 2)
        h = self.norm_c(x).reshape(B, T * N, D)
        x = x + self.cross(h, context, context_mask).view(B, T, N, D)
        return x + gate_m * self.mlp(modulate(self.norm_m(x), shift_m, scale_m))


class FinalLayer(nn.Module):
    """adaLN, then a linear map from each token to its patch of velocities."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        D = config.width
        self.norm = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(D, config.patch * config.patch * config.latent_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c)[:, :, None].chunk(2, dim=-1)  # 2 x (B, T, 1, D)
        return self.linear(modulate(self.norm(x), shift, scale))  # (B, T, N, p*p*C)


class STDiT(nn.Module):
    """Predicts the rectified-flow velocity of noisy latent clips, conditioned on a prompt."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = config
        grid = config.latent_size // config.patch
        self.patch_embed = PatchEmbed(config)
        self.t_embedder = TimestepEmbedder(config.width)
        self.text_encoder = TextEncoder(config)
        self.register_buffer("spatial_pos", spatial_positions(grid, config.width), persistent=False)  # (N, D)
        temporal = sincos(torch.arange(config.frames), config.width)[:, None]  # (T, 1, D)
        self.register_buffer("temporal_pos", temporal, persistent=False)
        self.blocks = nn.ModuleList(STBlock(config) for _ in range(config.depth))
        self.frame_prompt = FramePrompt(config) if config.frame_prompt else None
        self.spacetime_prompt = SpacetimePrompt(config) if config.spacetime_prompt else None
        self.final_layer = FinalLayer(config)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        # Linear layers: xavier-uniform weights, zero biases (DiT).
        def _basic_init(module):
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

        self.apply(_basic_init)

        # Patch embedding: like a linear layer over the flattened patch (DiT).
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.proj.bias)

        # Text: token table, positions and null prompt drawn small (CLIP, GPT-2).
        nn.init.normal_(self.text_encoder.token_embedding.weight, std=0.02)
        nn.init.normal_(self.text_encoder.positions, std=0.01)
        nn.init.normal_(self.text_encoder.null_prompt, std=0.02)

        # Timestep MLP: small normal weights (DiT).
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)

        # adaLN-Zero: zeroed modulation, so every block starts as the identity (DiT);
        # cross-attention output zeroed too, so the prompt enters gradually (PixArt-alpha).
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
            nn.init.zeros_(block.cross.proj.weight)
            nn.init.zeros_(block.cross.proj.bias)

        # The prompt's per-frame and per-token terms start at zero, like adaLN-Zero.
        if self.frame_prompt is not None:
            nn.init.zeros_(self.frame_prompt.mlp[-1].weight)
            nn.init.zeros_(self.frame_prompt.mlp[-1].bias)
        if self.spacetime_prompt is not None:
            nn.init.zeros_(self.spacetime_prompt.out.weight)
            nn.init.zeros_(self.spacetime_prompt.out.bias)

        # Output layer zeroed: the initial velocity prediction is 0 (DiT).
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def forward(self, x, t, tokens, frame_mask=None, drop=None) -> torch.Tensor:
        """Velocity (B, T, C, h, w) of latents x at times t (B,), prompt tokens (B, L).

        frame_mask (B, T) bool marks given (clean) frames; drop (B,) bool swaps in the null prompt.
        """
        context, context_mask = self.encode_text(tokens, drop)
        return self.velocity(x, t, context, context_mask, frame_mask)

    def encode_text(self, tokens: torch.Tensor, drop: torch.Tensor | None = None):
        """Prompt features (B, L, D) and key mask (B, L); dropped prompts become the null prompt."""
        return self.text_encoder(tokens, drop)

    def velocity(self, x, t, context, context_mask, frame_mask=None) -> torch.Tensor:
        """The network on encoded text; t is (B,) or per frame (B, T)."""
        B, T = x.shape[:2]
        t = t.view(B, 1).expand(B, T) if t.dim() == 1 else t  # (B, T)
        if frame_mask is not None:
            t = t.masked_fill(frame_mask, 0.0)  # given frames are clean (Open-Sora 1.2)
        c = self.t_embedder(t.to(x.dtype))  # (B, T, D)
        if self.frame_prompt is not None:
            c = c + self.frame_prompt(context, context_mask, self.temporal_pos[:T, 0])
        h = self.patch_embed(x) + self.spatial_pos  # (B, T, N, D)
        if self.spacetime_prompt is not None:
            h = h + self.spacetime_prompt(context, context_mask, self.temporal_pos[:T, 0], self.spatial_pos)
        for i, block in enumerate(self.blocks):
            h = block(h, c, context, context_mask, self.temporal_pos[:T] if i == 0 else None)
        return self.unpatchify(self.final_layer(h, c))  # (B, T, C, h, w)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, N, p*p*C) -> (B, T, C, h, w)."""
        B, T = x.shape[:2]
        p, C, g = self.config.patch, self.config.latent_channels, self.config.latent_size // self.config.patch
        x = x.view(B, T, g, g, p, p, C).permute(0, 1, 6, 2, 4, 3, 5)  # (B, T, C, g, p, g, p)
        return x.reshape(B, T, C, g * p, g * p)


# ---------------------------------------------------------------------------------------------
# Checkpoints: safetensors with the config in the metadata


def save_checkpoint(path: str | Path, model: STDiT, config: DiTConfig, extra: dict | None = None) -> None:
    """Weights and config (and JSON-ready `extra`) in one safetensors file, written atomically."""
    save_weights(path, model, asdict(config), extra)


def with_vocabulary(model: STDiT, vocabulary: tuple[int, ...]) -> STDiT:
    """A copy of the model whose token table has a row for each id of `vocabulary` (sorted) and one
    for every other id. Ids the model knew keep their rows, so prompts of known words encode exactly
    as before; a new id starts from the model's shared row (for a full table, the mean row of the ids
    outside `vocabulary`)."""
    old, table = model.config, model.text_encoder.token_embedding.weight.detach()
    if old.vocabulary is None:
        outside = torch.ones(old.vocab_size, dtype=torch.bool)
        outside[list(vocabulary)] = False
        shared = table[outside].mean(0)
    else:
        shared = table[0]
    rows = table_rows_of(old)[list(vocabulary)]  # (V,) each id's row in the old table, 0 where it shared one
    new_rows = torch.where((rows > 0)[:, None], table[rows], shared)
    return _rebuilt(model, replace(old, vocabulary=tuple(vocabulary)),
                    {"text_encoder.token_embedding.weight": torch.cat([shared[None], new_rows])})


def with_prompt_terms(model: STDiT, frame: bool = False, spacetime: bool = False) -> STDiT:
    """The model with a `FramePrompt` (`frame`) and a `SpacetimePrompt` (`spacetime`) where it lacks
    them: a copy whose new terms are zero at first, so its outputs are the model's; the model itself
    when it has every term asked for."""
    config = replace(model.config, frame_prompt=model.config.frame_prompt or frame,
                     spacetime_prompt=model.config.spacetime_prompt or spacetime)
    return model if config == model.config else _rebuilt(model, config)


def _rebuilt(model: STDiT, config: DiTConfig, replaced: dict[str, torch.Tensor] | None = None) -> STDiT:
    """A model of `config` with `model`'s weights (those in `replaced` swapped in) and, for parts
    `model` lacks, the new model's own initial ones; on `model`'s device, dtype and mode."""
    weights = next(model.parameters())
    out = STDiT(config).to(weights.device, weights.dtype)
    out.load_state_dict(out.state_dict() | model.state_dict() | (replaced or {}))
    return out.train(model.training)


RENAMED = {"unchecked_candidates": "wayless_candidates"}  # config fields an older file may name the old way


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[STDiT, DiTConfig, dict]:
    """Rebuild the model from its file alone; returns (model in eval mode, config, extra)."""
    state, raw, extra = read_weights(path)
    raw = {RENAMED.get(key, key): value for key, value in raw.items()}
    config = DiTConfig(**raw | {"vocabulary": None if raw.get("vocabulary") is None else tuple(raw["vocabulary"])})
    model = STDiT(config)
    model.load_state_dict(state)
    return model.to(device).eval(), config, extra

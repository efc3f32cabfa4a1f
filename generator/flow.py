"""Rectified flow: the training loss and an Euler sampler with classifier-free guidance.

Rectified flow (Liu et al. 2022) with SD3's logit-normal timestep sampling (Esser et al. 2024).
Convention: x_t = (1 - t) * x0 + t * noise, so t = 1 is pure noise and the velocity the model
predicts is v = noise - x0. Given frames (a frame mask) stay clean with t = 0 in training and
sampling (Open-Sora 1.2), and can guide the sampler as the prompt does (`guided_velocity`); region
masks are filled in at sampling time by replacing the known part after every step with the known
latents noised to the current time (RePaint, Lugmayr et al. 2022); variations start part-way, from
start latents noised to t = strength (SDEdit, Meng et al. 2022).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


class Cancelled(Exception):
    """Sampling was stopped by its callback."""


def sample_times(n: int, generator: torch.Generator | None = None, device="cpu",
                 mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """Logit-normal times in (0, 1), (n,): most weight on the middle of the path (SD3)."""
    return torch.sigmoid(mean + std * torch.randn(n, generator=generator, device=device))


def shift_times(t: torch.Tensor, shift: float) -> torch.Tensor:
    """SD3's time shift (Esser et al. 2024, eq. 23): t -> s t / (1 + (s - 1) t), more time near
    noise for s > 1, where a clip's layout and motion are decided; s = 1 leaves t exactly as it is."""
    return shift * t / (1 + (shift - 1) * t)


def unshift_time(t: float, shift: float) -> float:
    """The inverse of `shift_times`: the unshifted time that shifts to t."""
    return t / (shift - (shift - 1) * t)


def sample_frame_mask(n: int, frames: int, generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
    """Given frames for training, (n, T) bool, Open-Sora style: none 40%, the first frame 20%
    (image-to-video), the first k 20% (continue a clip), the last k 10%, random frames 10%."""
    kind = torch.rand(n, generator=generator)
    k = torch.randint(2, frames // 2 + 1, (n, 1), generator=generator)
    position = torch.arange(frames)[None]  # (1, T)
    mask = torch.where((kind >= 0.4)[:, None] & (kind < 0.6)[:, None], position == 0, False)
    mask |= ((kind >= 0.6) & (kind < 0.8))[:, None] & (position < k)
    mask |= ((kind >= 0.8) & (kind < 0.9))[:, None] & (position >= frames - k)
    mask |= (kind >= 0.9)[:, None] & (torch.rand(n, frames, generator=generator) < 0.3)
    return mask.to(device)


def training_loss(model, latents: torch.Tensor, tokens: torch.Tensor, frame_mask: torch.Tensor | None = None,
                  prompt_drop: float = 0.1, generator: torch.Generator | None = None,
                  weight: torch.Tensor | None = None, time_shift: float = 1.0) -> torch.Tensor:
    """Velocity MSE on the frames that are not given; given frames stay clean (t = 0).

    `weight` (broadcastable to (B, T, 1, h, w)) weighs latent cells within each frame, say the
    few cells an object covers above the background (see `train.object_weights`); `time_shift`
    moves the logit-normal times toward noise (`shift_times`).
    """
    B, T = latents.shape[:2]
    device = latents.device
    t = shift_times(sample_times(B, generator, device), time_shift)  # (B,)
    noise = torch.randn(latents.shape, generator=generator, device=device)
    x_t = (1 - t.view(B, 1, 1, 1, 1)) * latents + t.view(B, 1, 1, 1, 1) * noise  # (B, T, C, h, w)
    generated = torch.ones(B, T, device=device)
    if frame_mask is not None:
        x_t = torch.where(frame_mask[:, :, None, None, None], latents, x_t)
        generated = (~frame_mask).float()
    drop = torch.rand(B, generator=generator, device=device) < prompt_drop  # train the null prompt
    v = model(x_t, t, tokens, frame_mask=frame_mask, drop=drop)
    se = F.mse_loss(v.float(), (noise - latents).float(), reduction="none")  # (B, T, C, h, w)
    err = weighted_mean(se, weight, dims=(2, 3, 4))  # (B, T)
    return (err * generated).sum() / generated.sum().clamp(min=1)


def weighted_mean(se: torch.Tensor, weight: torch.Tensor | None, dims: tuple[int, ...]) -> torch.Tensor:
    """The mean of squared errors (B, T, C, h, w) over `dims`, weighted by `weight` (broadcastable to
    (B, T, 1, h, w): latent cells, see `train.object_weights`) where given."""
    if weight is None:
        return se.mean(dim=dims)
    weight = weight.float().expand(*se.shape[:2], 1, *se.shape[3:])
    return (se * weight).mean(dim=dims) / weight.mean(dim=dims)


def denoising_errors(model, clean: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor,
                     weight: torch.Tensor | None = None) -> torch.Tensor:
    """Each clip's velocity error (B,) when its latents `clean` are noised with `noise` to times t (B,)
    and denoised under `tokens`, weighted as `weighted_mean`."""
    x_t = (1 - t.view(-1, 1, 1, 1, 1)) * clean + t.view(-1, 1, 1, 1, 1) * noise
    v = model(x_t, t, tokens)
    return weighted_mean((v.float() - (noise - clean).float()) ** 2, weight, dims=(1, 2, 3, 4))


def contrast_loss(model, latents: torch.Tensor, counter: torch.Tensor, tokens: torch.Tensor,
                  weight: torch.Tensor | None = None, counter_weight: torch.Tensor | None = None,
                  generator: torch.Generator | None = None, time_shift: float = 3.0,
                  sharpness: float = 10.0, t_from: float = 0.0) -> torch.Tensor:
    """The prompt must explain its clip better than the clip's counterfactual (`counter`: the same
    clip with its object moving the other way), both (B, T, C, h, w) latents.

    Both are noised with the same noise to the same time (shifted toward noise, where a clip's
    motion is decided) and denoised under the clip's prompt; with their errors e (the clip) and e'
    (the counterfactual) and m = mean(e, e') held constant, the loss is m softplus(sharpness (e - e') / m):
    a preference between two denoising errors as in Diffusion-DPO (Wallace et al. 2023), anchored
    by the velocity loss instead of a reference model, in the units of the errors themselves (its
    gradient is at most `sharpness` whatever the time). The velocity loss alone
    leaves the model almost the same run forwards and backwards in time, so "left" and "right"
    move objects either way: every clip moving left has a clip moving right that looks the same
    frame by frame. `weight` and `counter_weight` weigh latent cells as in `training_loss`. `t_from`
    draws the times from [t_from, 1] only (the same distribution, squeezed): near noise, where only
    the prompt can say where the object is in each frame, and a sampler sets the way a clip moves.
    """
    t = shift_times(sample_times(len(latents), generator, latents.device), time_shift)
    t = (t_from + (1 - t_from) * t).repeat(2)  # (2B,)
    noise = torch.randn(latents.shape, generator=generator, device=latents.device).repeat(2, 1, 1, 1, 1)
    weights = None if weight is None else torch.cat([weight, counter_weight])
    err = denoising_errors(model, torch.cat([latents, counter]), noise, t, tokens.repeat(2, 1), weights)  # (2B,)
    e, e_counter = err.chunk(2)  # (B,) each
    m = ((e + e_counter) / 2).detach().clamp(min=1e-8)
    return (m * F.softplus(sharpness * (e - e_counter) / m)).mean()


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float = 0.999) -> None:
    """Exponential moving average of the weights, the model to sample from (DiT): all of them in one fused
    update (one kernel per few tensors on CUDA, not one per tensor)."""
    torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1 - decay)


# ---------------------------------------------------------------------------------------------
# Sampling


def prompt_context(model, tokens: torch.Tensor, neg_tokens: torch.Tensor | None, guidance: float):
    """Text features and mask for the sampler: conditional, then unconditional when guiding."""
    if guidance == 1.0:
        return model.encode_text(tokens)
    if neg_tokens is None:  # the learned null prompt
        uncond = model.encode_text(tokens, drop=torch.ones(len(tokens), dtype=torch.bool, device=tokens.device))
    else:
        uncond = model.encode_text(neg_tokens.expand_as(tokens))
    cond = model.encode_text(tokens)
    return torch.cat([cond[0], uncond[0]]), torch.cat([cond[1], uncond[1]])  # (2B, L, D), (2B, L)


def guided_velocity(model, x, t, context, context_mask, guidance: float, frame_mask=None,
                    unseen: torch.Tensor | None = None, frame_guidance: float = 0.0) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022), its passes batched in one forward; one pass for
    a context without the unconditional half (`prompt_context` at guidance 1).

    With `unseen` (x with its given frames noised to t, as if they were not given) and `frame_guidance`,
    the given frames guide too: one more pass, on `unseen` under the prompt, and the velocity moves
    `frame_guidance` times the prompted pass's difference from it further the given frames' way. The same
    construction as guidance by the prompt, with the given frames as the condition (InstructPix2Pix's
    guidance by its input image, Brooks et al. 2023): a continued clip keeps its given motion across the
    seam where the prompt alone would pull its new frames toward what the prompt most often means.
    """
    B, guided = len(x), len(context) > len(x)
    framed = unseen is not None and frame_guidance != 0 and frame_mask is not None
    passes = [x, x] if guided else [x]
    contexts, context_masks = [context], [context_mask]
    frame_masks = None if frame_mask is None else [frame_mask] * len(passes)
    if framed:
        passes.append(unseen)
        contexts.append(context[:B])
        context_masks.append(context_mask[:B])
        frame_masks.append(torch.zeros_like(frame_mask))  # as if no frame were given
    v = model.velocity(torch.cat(passes), t.repeat(len(passes)), torch.cat(contexts), torch.cat(context_masks),
                       None if frame_masks is None else torch.cat(frame_masks)).chunk(len(passes))
    velocity = v[1] + guidance * (v[0] - v[1]) if guided else v[0]
    return velocity + frame_guidance * (v[0] - v[-1]) if framed else velocity


def guidance_at(t: float, guidance: float, start: float = 1.0, early: float = 1.0) -> float:
    """The guidance scale at time t: `guidance` at and below the time `start`, and above it (near noise)
    a share `early` of its strength, 1 + early (guidance - 1). start 1 or early 1: `guidance` throughout.

    Guidance in a limited interval (Kynkaanniemi et al. 2024): near noise, where the layout and the
    motion of a clip are decided, full guidance pins an object where the prompt most often puts it
    and holds it there, so it stalls or stops short of an edge; without any there, shapes come out
    wrong. The model's config says the interval it samples best with (`DiTConfig.guidance_start`).
    """
    return guidance if t <= start else 1.0 + early * (guidance - 1.0)


def replace_known(x, known, known_mask, frame_mask, noise, t) -> torch.Tensor:
    """Known regions take the known latents noised to t; wholly known frames stay clean."""
    renoised = (1 - t) * known + t * noise
    if frame_mask is not None:
        renoised = torch.where(frame_mask[:, :, None, None, None], known, renoised)
    return known_mask * renoised + (1 - known_mask) * x


def initial_noise(shape: tuple[int, ...], generator: torch.Generator | None, device) -> torch.Tensor:
    """Gaussian noise drawn on the generator's device, then moved to `device`: a CPU generator's
    seed gives the same noise whatever device samples."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where).to(device)


def sampling_times(steps: int, t_start: float, time_shift: float, device="cpu") -> torch.Tensor:
    """The Euler steps' times from t_start down to 0: even in unshifted time, then shifted; a
    part-way start keeps a full run's step size."""
    u_start = unshift_time(t_start, time_shift)
    n = max(1, round(steps * u_start)) if t_start > 0 else 0
    return shift_times(torch.linspace(u_start, 0.0, n + 1, device=device), time_shift)


@dataclass(frozen=True)
class NoiseSearch:
    """Which of `candidates` starting noises a sample goes on from (random search over noises with a
    verifier, Ma et al. 2025). Each runs the steps above `probe_time`; `judge` scores the clean latents
    each predicts at its last one (x - t v), and the highest scoring goes on (the first, on a tie; a NaN
    score counts as the lowest). With `check`, a score in [0, 1] of finished latents (1: all that is asked),
    the candidates go on to the end in the judge's order until one scores 1. Where none of them does,
    another round of `candidates` noises is drawn, judged and checked the same way, up to `rounds` rounds;
    where no round has one scoring 1, the highest checked is kept (the earliest checked, on a tie). One noise
    is chosen for the whole batch, judged as one."""

    candidates: int
    probe_time: float
    judge: Callable[[torch.Tensor], float]
    check: Callable[[torch.Tensor], float] | None = None
    rounds: int = 1

    def __post_init__(self):
        if self.candidates < 1:
            raise ValueError(f"a noise search needs at least one candidate, not {self.candidates}")
        if self.rounds < 1:
            raise ValueError(f"a noise search needs at least one round, not {self.rounds}")


def probe_steps(times: torch.Tensor, probe_time: float) -> int:
    """The steps of a sampling run (`sampling_times`) that a noise search's candidates each run: those
    starting above `probe_time`."""
    return sum(1 for t in times[:-1].tolist() if t > probe_time)


def model_passes(steps: int, t_start: float, time_shift: float, candidates: int = 1, probe_time: float = 1.0,
                 checked: bool = False, rounds: int = 1) -> int:
    """How many guided model passes `sample` makes: its steps, and the probe steps of every candidate but
    the one that goes on (what its callback counts); with a search that checks finished latents
    (`NoiseSearch.check`), the most it can make: every step of every candidate of its `rounds` rounds
    (`rounds` counts only there)."""
    times = sampling_times(steps, t_start, time_shift)
    probes = probe_steps(times, probe_time) if candidates > 1 else 0
    if probes and checked:
        return rounds * candidates * (len(times) - 1)
    return len(times) - 1 + (candidates - 1) * probes


@torch.no_grad()
def sample(model, shape: tuple[int, ...], tokens: torch.Tensor, neg_tokens: torch.Tensor | None = None,
           steps: int = 30, guidance: float = 4.0, generator: torch.Generator | None = None,
           known: torch.Tensor | None = None, known_mask: torch.Tensor | None = None,
           start_latents: torch.Tensor | None = None, strength: float = 1.0, time_shift: float = 1.0,
           guidance_start: float = 1.0, early_guidance: float = 1.0, frame_guidance: float = 0.0,
           search: NoiseSearch | None = None,
           callback: Callable[[int, int, torch.Tensor], bool | None] | None = None) -> torch.Tensor:
    """Euler-integrate the flow from noise (t = 1) to latents (t = 0), shape (B, T, C, h, w).

    `known` with `known_mask` (broadcastable to shape; 1 = known) conditions on frames or
    regions; `start_latents` with `strength` < 1 makes variations, running only the last
    steps * strength steps. `time_shift` spaces the steps as the model's training times were
    (`shift_times`; the model's config says), and `guidance_start` with `early_guidance` weaken the
    guidance near noise (`guidance_at`; the config says too). `frame_guidance` lets wholly known frames
    guide as well (`guided_velocity`; the config says too): each step also runs as if they were not
    given, noised to its time with noise it draws from `generator` (RePaint's fresh noise each step).
    `search` draws that many noises from `generator` and goes on from the one its judge prefers
    (`NoiseSearch`; with its check, in up to `rounds` rounds of that many), where a step lies above its
    probe time and no start latents are given; otherwise, as with one candidate, it is the plain sampler.
    `callback(step, steps, latents)` returning False stops sampling with `Cancelled`; the steps count the
    search's probes too (`model_passes`), and a search whose check gives a candidate full marks before the
    last calls it once more, at the end of the count.
    """
    B, device = shape[0], tokens.device
    t_start = 1.0 if start_latents is None else float(strength)
    times = sampling_times(steps, t_start, time_shift, device)
    n = len(times) - 1
    searching = search is not None and search.candidates > 1 and start_latents is None
    probes = probe_steps(times, search.probe_time) if searching else 0
    candidates = search.candidates if probes else 1
    noises = [initial_noise(shape, generator, device) for _ in range(candidates)]
    scales = [guidance_at(t, guidance, guidance_start, early_guidance) for t in times[:-1].tolist()]  # one read
    context, context_mask = prompt_context(model, tokens, neg_tokens, guidance)
    frame_mask = None
    if known is not None:
        known_mask = known_mask.to(noises[0].dtype).expand(shape)  # (B, T, C, h, w)
        frame_mask = (known_mask == 1).flatten(2).all(dim=-1)  # (B, T) wholly known frames
        frame_mask = frame_mask if frame_mask.any() else None
    check = search.check if probes else None
    rounds = search.rounds if check is not None else 1
    done, total = 0, model_passes(steps, t_start, time_shift, candidates, search.probe_time if probes else 1.0,
                                  check is not None, rounds)

    def step(x: torch.Tensor, i: int, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One Euler step from times[i]: the next latents, and the clean latents predicted at times[i]."""
        nonlocal done
        unseen = None
        if known is not None:
            x = replace_known(x, known, known_mask, frame_mask, noise, times[i])
            if frame_guidance and frame_mask is not None:  # fresh noise each step, as RePaint's
                unseen = replace_known(x, known, known_mask, None, initial_noise(shape, generator, device), times[i])
        v = guided_velocity(model, x, times[i].expand(B), context, context_mask, scales[i], frame_mask,
                            unseen, frame_guidance)
        done += 1
        following = x + (times[i + 1] - times[i]) * v
        if callback is not None and callback(done, total, following) is False:
            raise Cancelled(f"cancelled at step {done} of {total}")
        return following, x - times[i] * v

    def finish(x: torch.Tensor, noise: torch.Tensor, first: int) -> torch.Tensor:
        """The steps from `first` on, then the known latents exactly (t = 0)."""
        for i in range(first, n):
            x, _ = step(x, i, noise)
        if known is not None:
            x = replace_known(x, known, known_mask, frame_mask, noise, times[-1])
        return x

    def checked_rounds() -> torch.Tensor:
        """Rounds of candidates judged, then finished and checked in the judge's order (`_best_checked`):
        the first that scores 1, or the highest checked of all rounds (the earliest, on a tie)."""
        kept = (None, -math.inf)
        for round_ in range(rounds):
            drawn = noises if round_ == 0 else [initial_noise(shape, generator, device) for _ in range(candidates)]
            kept = _best_checked(_ranked(step, drawn, probes, search.judge),
                                 lambda x, noise: finish(x, noise, probes), check, kept)
            if kept[1] >= 1:
                break
        return kept[0]

    if not probes:
        start = noises[0] if start_latents is None else (1 - strength) * start_latents + strength * noises[0]
        return finish(start, noises[0], 0)
    if check is None:
        return finish(*_ranked(step, noises, probes, search.judge)[0], probes)
    kept = checked_rounds()
    if done < total and callback is not None and callback(total, total, kept) is False:  # passed early
        raise Cancelled(f"cancelled at step {total} of {total}")
    return kept


def _best_checked(ranked: list[tuple[torch.Tensor, torch.Tensor]],
                  finish: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                  check: Callable[[torch.Tensor], float],
                  best: tuple[torch.Tensor | None, float]) -> tuple[torch.Tensor, float]:
    """Finish the candidates (latents, noise) in order until one scores 1 by `check`: the highest scoring
    finished latents and score, `best` (an earlier round's, or (None, -inf)) included; the earliest on a tie."""
    for x, noise in ranked:
        x = finish(x, noise)
        score = _orderable(check(x))
        if best[0] is None or score > best[1]:
            best = (x, score)
        if best[1] >= 1:
            break
    return best


def _orderable(score: float) -> float:
    """A judge's or a check's score, with NaN as the lowest."""
    return -math.inf if math.isnan(score) else score


def _ranked(step, noises: list[torch.Tensor], probes: int,
            judge: Callable[[torch.Tensor], float]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Run each candidate the first `probes` steps from its noise (a search has no start latents); their
    latents and noises, the judge's highest score first (in drawing order on a tie; a NaN score last)."""
    scored = []
    for k, noise in enumerate(noises):
        x = noise
        for i in range(probes):
            x, predicted = step(x, i, noise)
        score = judge(predicted)
        scored.append((_orderable(score), -k, x, noise))
    scored.sort(key=lambda c: c[:2], reverse=True)
    return [(x, noise) for *_, x, noise in scored]

"""Rectified flow: the loss, and the sampler's guidance, conditioning, variations and cancel."""

import math

import pytest
import torch

from generator import flow
from generator.dit import DIT_CONFIGS, STDiT

CONFIG = DIT_CONFIGS["test"]
SHAPE = (2, CONFIG.frames, CONFIG.latent_channels, CONFIG.latent_size, CONFIG.latent_size)


def woken_model(seed: int = 0) -> STDiT:
    """A test-size model with its zero-initialised layers filled with small noise."""
    torch.manual_seed(seed)
    model = STDiT(CONFIG)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.2)
    return model.eval()


def tokens(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, CONFIG.vocab_size, (SHAPE[0], CONFIG.context_length), generator=g)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_times_are_logit_normal():
    t = flow.sample_times(4000, gen())
    assert 0 < t.min() and t.max() < 1
    assert abs(t.mean().item() - 0.5) < 0.02 and abs(t.logit().std().item() - 1) < 0.05


def test_frame_masks_mix_the_open_sora_kinds():
    mask = flow.sample_frame_mask(2000, 16, gen())
    assert 0.5 < mask.any(dim=1).float().mean() < 0.7 and not mask.all(dim=1).any()
    first_only = mask[:, 0] & (mask.sum(1) == 1)
    prefix = mask[:, 0] & (mask == mask.cummin(dim=1).values).all(1) & (mask.sum(1) > 1)
    suffix = mask[:, -1] & (mask.flip(1) == mask.flip(1).cummin(dim=1).values).all(1) & ~mask[:, 0]
    assert 0.15 < first_only.float().mean() < 0.25 and 0.15 < prefix.float().mean() < 0.25
    assert 0.07 < suffix.float().mean() < 0.14


def test_contrast_prefers_the_clip_its_prompt_explains_and_trains_the_model_to():
    latents, counter, toks = torch.randn(SHAPE, generator=gen(1)), torch.randn(SHAPE, generator=gen(2)), tokens()
    model = woken_model()
    same = flow.contrast_loss(model, latents, latents, toks, generator=gen(3))
    assert same.item() > 0  # equal errors: m ln 2, no preference either way
    torch.manual_seed(0)
    model = STDiT(CONFIG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = flow.contrast_loss(model, latents, counter, toks, generator=gen(4))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]  # the model learnt to explain the clip, not its counterfactual
    t = flow.shift_times(flow.sample_times(len(latents), gen(4)), 3.0).view(-1, 1, 1, 1, 1)
    noise = torch.randn(SHAPE, generator=gen(4))
    with torch.no_grad():
        err = [((model((1 - t) * x + t * noise, t.flatten(), toks) - (noise - x)) ** 2).mean().item()
               for x in (latents, counter)]
    assert err[0] < err[1]


def test_contrast_from_draws_its_times_near_noise_only():
    latents, counter, toks = torch.randn(SHAPE, generator=gen(1)), torch.randn(SHAPE, generator=gen(2)), tokens()
    model, seen = woken_model(), []
    forward = model.forward
    model.forward = lambda x, t, *a, **k: seen.append(t.clone()) or forward(x, t, *a, **k)
    flow.contrast_loss(model, latents, counter, toks, generator=gen(3))
    flow.contrast_loss(model, latents, counter, toks, generator=gen(3), t_from=0.8)
    anywhere, near_noise = seen
    assert anywhere.min() < 0.8 and near_noise.min() >= 0.8 and near_noise.max() <= 1.0
    assert torch.allclose(near_noise, 0.8 + 0.2 * anywhere)  # the same draw, squeezed into [0.8, 1]


def test_loss_falls_when_overfitting_one_batch():
    torch.manual_seed(0)
    model = STDiT(CONFIG)
    latents, toks = torch.randn(SHAPE, generator=gen(1)), tokens()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = flow.training_loss(model, latents, toks, prompt_drop=0.0, generator=gen(2))  # same noise
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


class Spy(torch.nn.Module):
    """Wraps a model: records its inputs and adds junk to its output on the given frames."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, None

    def forward(self, x, t, tokens, frame_mask=None, drop=None):
        self.seen = x
        v = self.model(x, t, tokens, frame_mask=frame_mask, drop=drop)
        return v + 100.0 * frame_mask[:, :, None, None, None] if frame_mask is not None else v


def test_given_frames_stay_clean_and_leave_the_loss_alone():
    model = woken_model()
    latents, toks = torch.randn(SHAPE, generator=gen(1)), tokens()
    frame_mask = torch.tensor([[True, False, False, False], [True, True, False, False]])
    spy = Spy(model)
    junk = flow.training_loss(spy, latents, toks, frame_mask, generator=gen(3))
    assert torch.equal(spy.seen[frame_mask], latents[frame_mask])  # x_t = x0 on given frames
    assert not torch.equal(spy.seen[~frame_mask], latents[~frame_mask])
    clean = flow.training_loss(model, latents, toks, frame_mask, generator=gen(3))
    assert torch.allclose(junk, clean)


def test_a_loss_weight_is_a_weighted_mean_over_latent_cells():
    model = woken_model()
    latents, toks = torch.randn(SHAPE, generator=gen(1)), tokens()
    h = CONFIG.latent_size

    def loss(weight=None):
        return flow.training_loss(model, latents, toks, generator=gen(3), weight=weight)

    assert torch.allclose(loss(torch.full((1, 1, 1, h, h), 2.0)), loss())  # a uniform weight is the plain mean
    per_cell = torch.stack([loss(torch.eye(h * h)[k].view(1, 1, 1, h, h)) for k in range(h * h)])
    weight = torch.rand(h * h, generator=gen(5)) + 0.1
    expected = (weight * per_cell).sum() / weight.sum()
    assert torch.allclose(loss(weight.view(1, 1, 1, h, h)), expected, rtol=1e-4)
    assert not torch.allclose(expected, loss(), rtol=1e-3)


def test_sampler_is_deterministic_for_a_seed():
    model = woken_model()
    a = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(5))
    b = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(5))
    c = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(6))
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_batched_guidance_equals_separate_passes():
    model = woken_model()
    x, t, toks = torch.randn(SHAPE, generator=gen(1)), torch.rand(2, generator=gen(2)), tokens()
    with torch.no_grad():
        context, mask = flow.prompt_context(model, toks, None, guidance=4.0)
        batched = flow.guided_velocity(model, x, t, context, mask, 4.0)
        cond = model(x, t, toks)
        uncond = model(x, t, toks, drop=torch.ones(2, dtype=torch.bool))
    assert torch.allclose(batched, uncond + 4.0 * (cond - uncond), atol=1e-5)


def test_frame_guidance_adds_a_pass_without_the_given_frames():
    model = woken_model()
    x, t, toks = torch.randn(SHAPE, generator=gen(1)), torch.rand(2, generator=gen(2)), tokens()
    unseen = torch.randn(SHAPE, generator=gen(3))
    given = torch.tensor([[True, True, False, False]] * 2)
    with torch.no_grad():
        context, mask = flow.prompt_context(model, toks, None, guidance=4.0)
        batched = flow.guided_velocity(model, x, t, context, mask, 4.0, given, unseen, 1.5)
        cond = model(x, t, toks, frame_mask=given)
        uncond = model(x, t, toks, frame_mask=given, drop=torch.ones(2, dtype=torch.bool))
        without = model(unseen, t, toks)  # every frame at time t: none given
        plain = flow.guided_velocity(model, x, t, context, mask, 4.0, given)
        unguided = flow.guided_velocity(model, x, t, context[:2], mask[:2], 1.0, given, unseen, 1.5)
    assert torch.allclose(batched, uncond + 4.0 * (cond - uncond) + 1.5 * (cond - without), atol=1e-5)
    assert torch.allclose(plain, uncond + 4.0 * (cond - uncond), atol=1e-5)
    assert torch.allclose(unguided, cond + 1.5 * (cond - without), atol=1e-5)


def test_the_sampler_guides_by_given_frames_hidden_in_fresh_noise_from_its_generator():
    model = woken_model()
    known = torch.randn(SHAPE, generator=gen(1))
    frames = torch.zeros(SHAPE[:2] + (1, 1, 1))
    frames[:, :2] = 1  # continue a clip
    run = dict(steps=3, known=known, known_mask=frames)
    plain = flow.sample(model, SHAPE, tokens(), generator=gen(5), **run)
    assert torch.equal(plain, flow.sample(model, SHAPE, tokens(), generator=gen(5), frame_guidance=0.0, **run))
    guided = flow.sample(model, SHAPE, tokens(), generator=gen(5), frame_guidance=2.0, **run)
    assert torch.equal(guided, flow.sample(model, SHAPE, tokens(), generator=gen(5), frame_guidance=2.0, **run))
    assert torch.equal(guided[:, :2], known[:, :2]) and not torch.allclose(guided[:, 2:], plain[:, 2:])
    seen = []
    spy = Spy(model)
    spy.encode_text = model.encode_text
    spy.velocity = lambda x, t, c, m, frame_mask=None: seen.append((x.clone(), frame_mask)) or model.velocity(
        x, t, c, m, frame_mask)
    flow.sample(spy, SHAPE, tokens(), generator=gen(5), frame_guidance=2.0, **run)
    (x, frame_mask), (later, _) = seen[0], seen[1]
    draws = gen(5)
    start, fresh = torch.randn(SHAPE, generator=draws), torch.randn(SHAPE, generator=draws)
    assert torch.equal(frame_mask[-2:], torch.zeros(2, 4, dtype=torch.bool)) and frame_mask[:4, :2].all()
    assert torch.equal(x[:2, :2], known[:, :2]) and torch.equal(x[:2, 2:], start[:, 2:])
    assert torch.equal(x[-2:, :2], fresh[:, :2]) and torch.equal(x[-2:, 2:], start[:, 2:])  # t = 1: all noise
    t = flow.sampling_times(3, 1.0, 1.0)[1]
    assert not torch.allclose(later[-2:, :2], (1 - t) * known[:, :2] + t * fresh[:, :2])  # each step draws anew


def test_guidance_weakens_above_its_start_by_the_early_share():
    assert flow.guidance_at(0.9, 4.0) == 4.0  # no interval: full guidance throughout
    assert flow.guidance_at(0.9, 4.0, start=0.75, early=1 / 3) == pytest.approx(2.0)
    assert flow.guidance_at(0.75, 4.0, start=0.75, early=1 / 3) == 4.0 and flow.guidance_at(0.5, 7.0, 0.75, 0.0) == 7.0
    assert flow.guidance_at(0.9, 1.0, start=0.75, early=0.0) == 1.0  # unguided stays unguided


def test_the_sampler_guides_only_within_its_interval():
    model = woken_model()
    full = flow.sample(model, SHAPE, tokens(), steps=4, guidance=4.0, generator=gen(5))
    unguided = flow.sample(model, SHAPE, tokens(), steps=4, guidance=1.0, generator=gen(5))
    never = flow.sample(model, SHAPE, tokens(), steps=4, guidance=4.0, generator=gen(5), guidance_start=0.0,
                        early_guidance=0.0)  # every step lies above t = 0: none is guided
    part = flow.sample(model, SHAPE, tokens(), steps=4, guidance=4.0, generator=gen(5), guidance_start=0.5,
                       early_guidance=0.0)
    assert torch.allclose(never, unguided, atol=1e-5)
    assert not torch.allclose(part, full, atol=1e-3) and not torch.allclose(part, unguided, atol=1e-3)
    assert torch.equal(flow.sample(model, SHAPE, tokens(), steps=4, guidance=4.0, generator=gen(5),
                                   guidance_start=1.0, early_guidance=0.0), full)


def test_negative_prompt_replaces_the_null_prompt():
    model = woken_model()
    plain = flow.sample(model, SHAPE, tokens(), steps=3, generator=gen(5))
    negative = flow.sample(model, SHAPE, tokens(), neg_tokens=tokens(9)[:1], steps=3, generator=gen(5))
    assert not torch.allclose(plain, negative)


def test_known_frames_and_regions_are_kept_exactly():
    model = woken_model()
    known = torch.randn(SHAPE, generator=gen(1))
    frames = torch.zeros(SHAPE[:2] + (1, 1, 1))
    frames[:, 0] = 1  # first frame given: image-to-video
    out = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(5), known=known, known_mask=frames)
    assert torch.equal(out[:, 0], known[:, 0]) and not torch.allclose(out[:, 1:], known[:, 1:])
    region = torch.zeros(SHAPE, dtype=torch.bool)
    region[..., :2, :] = True  # top half of every frame: outpaint the rest
    out = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(5), known=known, known_mask=region)
    assert torch.equal(out[region], known[region]) and not torch.allclose(out[~region], known[~region])


def test_known_frames_are_clean_conditioning_in_the_model():
    spy = Spy(woken_model())
    spy.velocity = lambda x, t, c, m, frame_mask=None: setattr(spy, "frame_mask", frame_mask) or torch.zeros_like(x)
    spy.encode_text = spy.model.encode_text
    known = torch.randn(SHAPE, generator=gen(1))
    frames = torch.zeros(SHAPE[:2] + (1, 1, 1))
    frames[:, :2] = 1
    flow.sample(spy, SHAPE, tokens(), steps=2, guidance=1.0, generator=gen(5), known=known, known_mask=frames)
    assert torch.equal(spy.frame_mask, torch.tensor([[True, True, False, False]] * 2))


def test_variation_with_zero_strength_returns_the_start():
    model = woken_model()
    start = torch.randn(SHAPE, generator=gen(1))
    calls = []
    out = flow.sample(model, SHAPE, tokens(), start_latents=start, strength=0.0, generator=gen(5),
                      callback=lambda *a: calls.append(a))
    assert torch.equal(out, start) and not calls
    half = flow.sample(model, SHAPE, tokens(), steps=10, start_latents=start, strength=0.5, generator=gen(5),
                       callback=lambda *a: calls.append(a[:2]))
    assert calls == [(i, 5) for i in range(1, 6)] and not torch.allclose(half, start)


def test_callback_cancels():
    model = woken_model()
    seen = []

    def stop_at_two(step, steps, latents):
        seen.append(step)
        return step < 2

    with pytest.raises(flow.Cancelled):
        flow.sample(model, SHAPE, tokens(), steps=6, generator=gen(5), callback=stop_at_two)
    assert seen == [1, 2]

    def raise_cancelled(step, steps, latents):
        raise flow.Cancelled("user")

    with pytest.raises(flow.Cancelled, match="user"):
        flow.sample(model, SHAPE, tokens(), steps=6, generator=gen(5), callback=raise_cancelled)


def test_ema_moves_toward_the_model():
    model, ema = woken_model(0), woken_model(1)
    before = [p.clone() for p in ema.parameters()]
    flow.update_ema(ema, model, decay=0.5)
    for b, e, p in zip(before, ema.parameters(), model.parameters()):
        assert torch.allclose(e, (b + p) / 2, atol=1e-6)


def test_time_shift_moves_times_toward_noise_and_one_leaves_them_alone():
    t = torch.linspace(0, 1, 11)
    assert torch.equal(flow.shift_times(t, 1.0), t)
    shifted = flow.shift_times(t, 3.0)
    assert shifted[0] == 0 and shifted[-1] == 1 and (shifted[1:-1] > t[1:-1]).all()
    assert torch.allclose(shifted[5], torch.tensor(0.75))  # 3 * 0.5 / (1 + 2 * 0.5)
    assert flow.unshift_time(0.75, 3.0) == pytest.approx(0.5)


def test_sampling_times_spend_more_steps_near_noise_when_shifted():
    plain, shifted = flow.sampling_times(10, 1.0, 1.0), flow.sampling_times(10, 1.0, 3.0)
    assert torch.equal(plain, torch.linspace(1, 0, 11)) and len(shifted) == 11
    assert shifted[0] == 1 and shifted[-1] == 0 and (shifted[1:-1] > plain[1:-1]).all()
    half = flow.sampling_times(10, 0.75, 3.0)  # a variation at strength 0.75 starts at t = 0.75 exactly
    assert half[0] == pytest.approx(0.75) and len(half) == 6  # the unshifted 0.5 of a 10-step run


def test_the_sampler_follows_the_time_shift_and_the_loss_takes_it():
    model = woken_model()
    plain = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(5))
    shifted = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(5), time_shift=3.0)
    assert not torch.allclose(plain, shifted)
    latents = torch.randn(SHAPE, generator=gen(1))
    losses = [flow.training_loss(model, latents, tokens(), generator=gen(3), time_shift=s) for s in (1.0, 3.0)]
    assert losses[0] != losses[1]


def test_a_search_of_one_candidate_is_the_plain_sampler():
    model = woken_model()
    plain = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3), time_shift=3.0)
    one = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3), time_shift=3.0,
                      search=flow.NoiseSearch(1, 0.5, judge=lambda _x: pytest.fail("one candidate is not judged")))
    assert torch.equal(plain, one)


def test_the_search_goes_on_from_the_noise_its_judge_prefers():
    model, scores, judged = woken_model(), iter([0.1, 0.7, 0.3]), []

    def judge(predicted):
        judged.append(predicted.shape)
        return next(scores)

    picked = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3), time_shift=3.0,
                         search=flow.NoiseSearch(3, 0.5, judge))
    second = gen(3)
    torch.randn(SHAPE, generator=second)  # the first candidate's noise: the search went on from the second
    assert torch.equal(picked, flow.sample(model, SHAPE, tokens(), steps=4, generator=second, time_shift=3.0))
    assert judged == [SHAPE] * 3  # each candidate's predicted clean latents, judged once


def test_a_nan_score_never_wins_the_search():
    model = woken_model()
    picked = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3), time_shift=3.0,
                         search=flow.NoiseSearch(2, 0.5, judge=lambda _x, scores=iter([math.nan, -5.0]): next(scores)))
    second = gen(3)
    torch.randn(SHAPE, generator=second)  # the first candidate's noise, judged NaN
    assert torch.equal(picked, flow.sample(model, SHAPE, tokens(), steps=4, generator=second, time_shift=3.0))


def test_the_search_runs_each_candidate_through_the_steps_above_the_probe_time_and_counts_them():
    model, seen = woken_model(), []
    times = flow.sampling_times(6, 1.0, 3.0)
    above = sum(1 for t in times[:-1].tolist() if t > 0.8)
    flow.sample(model, SHAPE, tokens(), steps=6, generator=gen(3), time_shift=3.0,
                search=flow.NoiseSearch(3, 0.8, judge=lambda _x: 0.0),
                callback=lambda step, total, _x: seen.append((step, total)))
    total = 6 + 2 * above
    assert 0 < above < 6 and seen == [(k, total) for k in range(1, total + 1)]


class Drift(torch.nn.Module):
    """A stand-in model whose velocity is 1 everywhere: from noise z, x_t = z + (t - 1), and x - t v = z - 1."""

    def encode_text(self, tokens, drop=None):
        return torch.zeros(len(tokens), 1, 1), torch.ones(len(tokens), 1, dtype=torch.bool)

    def velocity(self, x, t, context, context_mask, frame_mask=None):
        return torch.ones_like(x)


def test_the_judge_sees_each_candidates_predicted_clean_latents():
    judged = []
    flow.sample(Drift(), SHAPE, tokens(), steps=6, guidance=1.0, generator=gen(3), time_shift=3.0,
                search=flow.NoiseSearch(3, 0.8, judge=lambda x: judged.append(x) or 0.0))
    draws = gen(3)
    noises = [torch.randn(SHAPE, generator=draws) for _ in range(3)]
    assert len(judged) == 3 and all(torch.allclose(x, z - 1, atol=1e-6) for x, z in zip(judged, noises))


def test_a_search_at_time_0_judges_each_candidates_finished_latents_and_keeps_the_best_as_it_finished():
    model, judged = woken_model(), []
    picked = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3), time_shift=3.0,
                         search=flow.NoiseSearch(3, 0.0, judge=lambda x, s=iter([0.0, 5.0, 1.0]): judged.append(x)
                                                 or next(s)))
    second = gen(3)
    torch.randn(SHAPE, generator=second)  # the first candidate's noise: the search kept the second
    alone = flow.sample(model, SHAPE, tokens(), steps=4, generator=second, time_shift=3.0)
    assert len(judged) == 3 and torch.equal(judged[1], alone) and torch.equal(picked, alone)  # as it finished
    assert flow.model_passes(4, 1.0, 3.0, 3, 0.0) == 3 * 4  # every candidate runs every step, and no more


def test_a_search_with_a_check_finishes_candidates_in_the_judges_order_until_one_scores_full_marks():
    model, checked = woken_model(), []
    search = flow.NoiseSearch(3, 0.5, judge=lambda _x, s=iter([1.0, 3.0, 2.0]): next(s),
                              check=lambda x: checked.append(x) or (1.0 if len(checked) == 2 else 0.5))
    picked = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3), time_shift=3.0, search=search)
    third = gen(3)
    torch.randn(SHAPE, generator=third)
    torch.randn(SHAPE, generator=third)  # the judge's order is the second, the third, the first
    alone = flow.sample(model, SHAPE, tokens(), steps=4, generator=third, time_shift=3.0)
    assert len(checked) == 2 and torch.equal(checked[1], alone) and torch.equal(picked, alone)
    assert flow.model_passes(4, 1.0, 3.0, 3, 0.5, checked=True) == 3 * 4  # the most: every candidate finished


def test_a_checked_search_draws_another_round_where_none_of_a_round_scores_full_marks_and_keeps_the_first_that_does():
    model, checked, seen = woken_model(), [], []
    search = flow.NoiseSearch(2, 0.5, judge=lambda _x, s=iter([1.0, 3.0, 5.0, 4.0]): next(s),
                              check=lambda x: checked.append(x) or float(len(checked) == 4), rounds=3)
    picked = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3), time_shift=3.0, search=search,
                         callback=lambda step, total, _x: seen.append((step, total)))
    fourth = gen(3)
    for _ in range(3):
        torch.randn(SHAPE, generator=fourth)  # round 1's two noises (both fail), round 2's first (judged first, fails)
    alone = flow.sample(model, SHAPE, tokens(), steps=4, generator=fourth, time_shift=3.0)
    assert len(checked) == 4 and torch.equal(picked, alone)  # round 2's second noise passes: kept as it finished
    assert flow.model_passes(4, 1.0, 3.0, 2, 0.5, checked=True, rounds=3) == 3 * 2 * 4  # the most: all rounds
    assert seen[-1] == (24, 24) and seen[-2][0] < 24  # it passed in round 2 and ends at the count


def test_a_checked_search_that_no_round_gives_full_marks_keeps_the_highest_checked_the_earliest_on_a_tie():
    model, checked = woken_model(), []
    search = flow.NoiseSearch(2, 0.5, judge=lambda _x, s=iter([1.0, 3.0, 5.0, 4.0]): next(s),
                              check=lambda x, s=iter([0.0, 2 / 3, 2 / 3, float("nan")]): checked.append(x) or next(s),
                              rounds=2)
    picked = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3), time_shift=3.0, search=search)
    # round 1's judge ranks its first noise second, the first checked 2/3; round 2's first ties it: the earlier is kept
    assert len(checked) == 4 and torch.equal(picked, checked[1])
    assert torch.equal(picked, flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3), time_shift=3.0))


def test_a_checked_search_that_no_candidate_scores_keeps_the_first_rounds_judged_first():
    model, checked = woken_model(), []
    search = flow.NoiseSearch(2, 0.5, judge=lambda _x, s=iter([1.0, 3.0, 5.0, 4.0]): next(s),
                              check=lambda x: checked.append(x) or 0.0, rounds=2)
    picked = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3), time_shift=3.0, search=search)
    second = gen(3)
    torch.randn(SHAPE, generator=second)  # round 1's judge ranks its second noise first
    assert len(checked) == 4 and torch.equal(picked, checked[0])
    assert torch.equal(picked, flow.sample(model, SHAPE, tokens(), steps=4, generator=second, time_shift=3.0))
    with pytest.raises(ValueError, match="at least one round"):
        flow.NoiseSearch(2, 0.5, judge=lambda _x: 0.0, rounds=0)


def test_a_search_needs_a_candidate_and_probes_only_where_steps_lie_above_its_time():
    with pytest.raises(ValueError, match="at least one candidate"):
        flow.NoiseSearch(0, 0.9, judge=lambda _x: 0.0)
    model = woken_model()
    plain = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3))
    never = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3),
                        search=flow.NoiseSearch(3, 1.0, judge=lambda _x: pytest.fail("no step lies above t = 1")))
    assert torch.equal(plain, never) and flow.model_passes(4, 1.0, 1.0, 3, 1.0) == 4
    assert flow.model_passes(4, 1.0, 1.0, 3, 0.6) == 4 + 2 * 2  # t = 1 and 0.75 lie above 0.6


def test_a_variation_searches_no_noise():
    model, start = woken_model(), torch.randn(SHAPE, generator=gen(9))
    plain = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3), start_latents=start, strength=0.6)
    searched = flow.sample(model, SHAPE, tokens(), steps=4, generator=gen(3), start_latents=start, strength=0.6,
                           search=flow.NoiseSearch(3, 0.5, judge=lambda _x: pytest.fail("a variation is not judged")))
    assert torch.equal(plain, searched)

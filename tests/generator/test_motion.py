"""The way a prompt asks an object to move, the way a clip moves, and the sampler's search for it."""

import dataclasses

import numpy as np
import pytest
import torch

from generator import flow, world
from generator.autoencoder import AE_CONFIGS, FrameAutoencoder, to_video_tensor
from generator.dit import DIT_CONFIGS, STDiT
from generator.motion import STEADY_WEIGHT, asked_motion, mass_centres, motion_along, motion_score
from generator.pipeline import Generator
from generator.tracker import track


@pytest.mark.parametrize(("prompt", "way"), [
    ("a red ball moving left in a forest", (-1.0, 0.0)),
    ("a blue square moving quickly up at sunset", (0.0, -1.0)),
    ("A green box going right", (1.0, 0.0)),
    ("a yellow ball falling on black", (0.0, 1.0)),
    ("a red ball and a blue square colliding on black", None),
    ("a red ball on black", None),
    ("a dragon over a castle", None),
])
def test_a_prompt_asks_for_the_way_its_words_name(prompt, way):
    assert asked_motion(prompt) == way


def world_clip(scene: str, motion: str, start: tuple[float, float], speed: float = 2.0) -> torch.Tensor:
    """A rendered world clip of one ball, as (T, 3, H, W) in [-1, 1]."""
    spec = world.ClipSpec(scene=scene, objects=(world.ObjectSpec("ball", "yellow", 6, motion),), speeds=(speed,),
                          starts=(start,))
    return to_video_tensor(world.make_clips([spec])[0].frames[None])[0]


@pytest.mark.parametrize("scene", ["on black", "in a forest", "at sunset"])
@pytest.mark.parametrize(("direction", "start"), [("left", (50.0, 32.0)), ("right", (14.0, 32.0)),
                                                   ("up", (32.0, 50.0)), ("down", (32.0, 14.0))])
def test_a_clip_moves_along_the_way_it_moves_and_against_the_opposite(scene, direction, start):
    frames = world_clip(scene, f"moving {direction}", start)
    way = world.DIRECTIONS[direction]
    along, against = motion_along(frames, way), motion_along(frames, (-way[0], -way[1]))
    assert along > 1.0 and against == pytest.approx(-along)  # 2 px a frame, the background aside
    across = motion_along(frames, (way[1], way[0]))
    assert abs(across) < 0.3 * along


def test_the_search_prefers_one_steady_object_to_one_that_gains_a_copy_part_way():
    one = world_clip("in a forest", "moving left", (50.0, 32.0))
    copied = one.clone()
    copied[10:, :, 44:58, 6:20] = one[0, :, 25:39, 43:57]  # a copy of the object appears at frame 10
    assert motion_score(one, (-1.0, 0.0)) == pytest.approx(motion_along(one, (-1.0, 0.0)), abs=0.1 * STEADY_WEIGHT)
    assert motion_score(copied, (-1.0, 0.0)) < motion_score(one, (-1.0, 0.0)) - 1.0


def test_a_still_clip_does_not_move_and_an_empty_one_has_its_centre_in_the_middle():
    still = world_clip("on black", "moving left", (32.0, 32.0), speed=0.0)
    assert motion_along(still, (1.0, 0.0)) == 0.0  # no mass moves: the centre stays in the middle
    assert mass_centres(torch.zeros(3, 8, 10)).tolist() == [[5.0, 4.0]] * 3


@pytest.fixture(scope="module")
def shipped():
    return Generator.load("reelbase-tiny", "cpu")


def horizontal_velocity(frames: np.ndarray) -> float:
    """The tracker's mean x-velocity over the first 8 frames of the object seen longest (px/frame)."""
    found = max(track(frames, "on black").tracks, key=lambda tr: tr.present.sum())
    return float(np.nanmean(np.diff(found.centres[:8, 0])))


def test_the_search_sends_the_shipped_models_object_the_asked_way_where_its_first_noise_did_not(shipped):
    prompt = "a white ball moving right on black"
    for seed in (4, 6, 7):  # seeds at which the first noise sends it left (model card, session 19)
        plain = shipped.generate(prompt, seed=seed, steps=20, candidates=1)
        searched = shipped.generate(prompt, seed=seed, steps=20)
        assert horizontal_velocity(plain.frames) < -0.5 < 0.5 < horizontal_velocity(searched.frames)
        assert searched.record["candidates"] == shipped.dit.config.candidates > 1


def test_a_prompt_naming_no_way_searches_nothing(shipped):
    prompt = "a red ball and a blue square colliding on black"
    one = shipped.generate(prompt, seed=2, steps=3, candidates=1)
    many = shipped.generate(prompt, seed=2, steps=3, candidates=4)
    assert np.array_equal(one.frames, many.frames) and many.record["candidates"] == 1  # nothing was searched


def test_a_variation_searches_nothing_and_the_candidates_are_bounded(shipped):
    clip = shipped.generate("a red ball moving left on black", seed=1, steps=3, candidates=1).frames
    one = shipped.vary(clip, "a red ball moving left on black", seed=3, steps=3, candidates=1)
    many = shipped.vary(clip, "a red ball moving left on black", seed=3, steps=3, candidates=4)
    assert np.array_equal(one.frames, many.frames)
    with pytest.raises(ValueError, match="candidates"):
        shipped.generate("a red ball moving left", steps=1, candidates=9)
    with pytest.raises(ValueError, match="candidates"):
        shipped.generate("a red ball moving left", steps=1, candidates=0)


@pytest.fixture(scope="module")
def small():
    """A test-size generator with a random model that searches 3 noises."""
    torch.manual_seed(0)
    ae = FrameAutoencoder(AE_CONFIGS["test"])
    config = dataclasses.replace(DIT_CONFIGS["test"], latent_channels=ae.config.latent_channels, latent_size=8,
                                 frames=8, candidates=3, probe_time=0.5)
    return Generator(STDiT(config), ae, "test", "cpu")


def searched(make) -> bool:
    """Whether a generation differs with the model's own candidates from one candidate, at any of 4 seeds."""
    return any(not np.array_equal(make(seed, None).frames, make(seed, 1).frames) for seed in range(4))


def test_windows_whose_motion_the_prompt_alone_decides_are_searched_and_the_others_not(small):
    clip = world.sample_clips(4, 0, 1)[0].frames[:8]
    prompt = "a red ball moving left on black"
    assert searched(lambda seed, k: small.generate(prompt, seed=seed, steps=4, candidates=k))
    assert searched(lambda seed, k: small.animate(clip[0], prompt, seed=seed, steps=4, frames=6, candidates=k))
    assert not searched(lambda seed, k: small.extend(clip[:4], prompt, seed=seed, steps=4, new_frames=4, context=4,
                                                     candidates=k))  # four given frames already move
    assert searched(lambda seed, k: small.extend(clip[:1], prompt, seed=seed, steps=4, new_frames=4, context=1,
                                                 candidates=k))  # one given frame says no motion yet
    assert not searched(lambda seed, k: small.generate("a red ball on black", seed=seed, steps=4, candidates=k))
    assert small.generate(prompt, steps=2).record["candidates"] == 3
    assert small.extend(clip[:4], prompt, steps=2, new_frames=4, context=4).record["candidates"] == 1


def test_progress_counts_every_model_pass_of_a_long_clip_once_in_order(small):
    seen = []
    small.generate("a red ball moving left on black", steps=4, frames=16, callback=lambda i, n: seen.append((i, n)))
    total = seen[-1][1]  # three windows: the first searched (3 candidates), the two chained on it not
    times = flow.sampling_times(4, 1.0, small.dit.config.time_shift)
    assert total == 3 * 4 + 2 * flow.probe_steps(times, 0.5) > 12
    assert seen == [(i, total) for i in range(1, total + 1)]

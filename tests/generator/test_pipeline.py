"""Every Generator mode keeps what it was given and returns the right size (small random models)."""

import dataclasses

import decord
import numpy as np
import pytest
import torch

from generator import world
from generator.autoencoder import AE_CONFIGS, FrameAutoencoder
from generator.dit import DIT_CONFIGS, STDiT
from generator.flow import Cancelled
from generator.pipeline import Generator
from generator.video import write_mp4


@pytest.fixture(scope="module")
def gen():
    ae = FrameAutoencoder(AE_CONFIGS["test"])
    config = dataclasses.replace(DIT_CONFIGS["test"], latent_channels=ae.config.latent_channels, latent_size=8,
                                 frames=16)
    return Generator(STDiT(config), ae, "test", "cpu")


@pytest.fixture(scope="module")
def clip():
    return world.sample_clips(4, 0, 1)[0].frames


def test_generate_shape_record_and_determinism(gen):
    a = gen.generate("a red ball moving right on black", seed=1, steps=3, guidance=4.0)
    b = gen.generate("a red ball moving right on black", seed=1, steps=3, guidance=4.0)
    c = gen.generate("a red ball moving right on black", seed=2, steps=3, guidance=4.0)
    assert a.frames.shape == (16, 64, 64, 3) and a.frames.dtype == np.uint8 and a.fps == 8
    assert np.array_equal(a.frames, b.frames) and not np.array_equal(a.frames, c.frames)
    assert a.record["mode"] == "generate" and a.record["seed"] == 1 and a.record["warnings"] == []
    assert a.record["parsed_prompt"]["objects"] == [{"colour": "red", "shape": "ball"}]


def test_long_and_short_clips(gen):
    assert gen.generate("a blue square falling", steps=2, frames=30).frames.shape[0] == 30
    assert gen.generate("a blue square falling", steps=2, frames=5).frames.shape[0] == 5


def test_unknown_words_warn(gen):
    record = gen.generate("a dragon over a castle", steps=1).record
    assert "'dragon'" in record["warnings"][0]


def test_animate_keeps_the_image_as_first_frame(gen, clip):
    out = gen.animate(clip[0], "a red ball", steps=2, frames=16)
    assert out.frames.shape == (16, 64, 64, 3) and np.array_equal(out.frames[0], clip[0])


def test_extend_keeps_the_clip_and_adds_frames(gen, clip):
    out = gen.extend(clip, "a red ball", steps=2, new_frames=20)
    assert out.frames.shape[0] == 36 and np.array_equal(out.frames[:16], clip)
    assert out.record["seam"] == 16


def test_inpaint_and_outpaint_keep_pixels_outside_the_region(gen, clip):
    region = np.zeros((64, 64), bool)
    region[16:40, 20:44] = True
    out = gen.inpaint(clip, region, "a green ball", steps=2)
    assert out.frames.shape == clip.shape
    assert np.array_equal(out.frames[:, ~region], clip[:, ~region])
    out = gen.outpaint(clip, region, "a green ball", steps=2)
    assert np.array_equal(out.frames[:, region], clip[:, region]) and out.record["mode"] == "outpaint"


def test_vary_strength_zero_is_the_clip_through_the_autoencoder(gen, clip):
    out = gen.vary(clip, "a red ball", strength=0.0, steps=4)
    again = gen.vary(clip, "another prompt", strength=0.0, steps=4, seed=9)
    assert out.frames.shape == clip.shape and np.array_equal(out.frames, again.frames)
    with pytest.raises(ValueError, match="strength"):
        gen.vary(clip, "x", strength=1.5)


def test_bad_parameters_are_clear_errors(gen, clip):
    with pytest.raises(ValueError, match="steps"):
        gen.generate("x", steps=0)
    with pytest.raises(ValueError, match="frames"):
        gen.inpaint(clip[:3], np.ones((64, 64), bool), "x")
    with pytest.raises(ValueError, match="uint8"):
        gen.extend(clip.astype(np.float32), "x")


def test_callback_reports_progress_and_cancels(gen):
    seen = []
    gen.generate("x", steps=3, callback=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(Cancelled):
        gen.generate("x", steps=5, callback=lambda i, n: i < 2)


def test_mp4_reads_back_with_decord(gen, tmp_path):
    out = gen.generate("a red ball", steps=2)
    path = write_mp4(tmp_path / "clip.mp4", out.frames, out.fps)
    reader = decord.VideoReader(str(path))
    assert len(reader) == 16 and reader[0].shape == (64, 64, 3)


def test_the_generator_samples_with_its_checkpoints_time_shift(gen):
    torch.manual_seed(0)
    plain, shifted = (STDiT(dataclasses.replace(gen.dit.config, time_shift=s)) for s in (1.0, 3.0))
    with torch.no_grad():  # wake the zero-initialised layers, so the velocity (and the schedule) matters
        for p in plain.parameters():
            if not p.any():
                p.normal_(0, 0.2)
    shifted.load_state_dict(plain.state_dict())
    prompt = "a red ball moving right on black"
    a, b = (Generator(m, gen.autoencoder, "test", "cpu").generate(prompt, seed=1, steps=3).frames
            for m in (plain, shifted))
    assert not np.array_equal(a, b)

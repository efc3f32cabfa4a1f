"""Every Generator mode keeps what it was given and returns the right size (small random models)."""

import dataclasses

import decord
import numpy as np
import pytest
import torch
from pydantic import ValidationError

from generator import world
from generator.autoencoder import AE_CONFIGS, FrameAutoencoder, save_autoencoder
from generator.checkpoint import AUTOENCODER, save_weights
from generator.dit import DIT_CONFIGS, STDiT
from generator.flow import Cancelled
from generator.params import GenerationParams, Region
from generator.pipeline import CONTEXT, Generator
from generator.video import square_frames, write_mp4


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
    assert a.record["mode"] == "text" and a.record["seed"] == 1 and a.record["warnings"] == []
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


def test_a_long_animated_clips_later_windows_carry_on_its_last_frames(gen, clip, monkeypatch):
    windows, run = [], Generator._run

    def spy(self, params, window, progress):
        windows.append(window)
        return run(self, params, window, progress)

    monkeypatch.setattr(Generator, "_run", spy)
    seen = []
    out = gen.animate(clip[0], "a red ball", steps=2, frames=40, callback=lambda i, n: seen.append((i, n)))
    assert out.frames.shape[0] == 40 and np.array_equal(out.frames[0], clip[0])
    given = [int(w.keep.all(axis=(1, 2)).sum()) for w in windows]
    assert given == [1, CONTEXT, CONTEXT]  # the image, then the last frames made: 16 frames, 12 more, 12 more
    assert np.array_equal(windows[1].given[:CONTEXT], out.frames[16 - CONTEXT : 16])
    assert seen == [(i, seen[-1][1]) for i in range(1, seen[-1][1] + 1)]  # each pass counted once, in order


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


def woken(config) -> STDiT:
    """A model of `config` whose zero-initialised layers hold small noise, so that its velocity, and how it is
    sampled (the schedule, the guidance, the given frames), shows in the frames."""
    torch.manual_seed(0)
    model = STDiT(config)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.2)
    return model


def alike(model: STDiT, **changes) -> STDiT:
    """The model's weights under its config with `changes`."""
    other = STDiT(dataclasses.replace(model.config, **changes))
    other.load_state_dict(model.state_dict())
    return other


@pytest.mark.parametrize("recipe", [{"time_shift": 3.0}, {"guidance_start": 0.5, "early_guidance": 0.0}])
def test_the_generator_samples_as_its_checkpoint_says(gen, recipe):
    plain = woken(gen.dit.config)
    shifted = alike(plain, **recipe)
    prompt = "a red ball moving right on black"
    a, b = (Generator(m, gen.autoencoder, "test", "cpu").generate(prompt, seed=1, steps=3).frames
            for m in (plain, shifted))
    assert not np.array_equal(a, b)


def test_given_frames_guide_as_the_checkpoint_says_and_text_alone_is_unchanged(gen, clip):
    model = woken(gen.dit.config)
    plain, framed = (Generator(m, gen.autoencoder, "test", "cpu") for m in (model, alike(model, frame_guidance=2.0)))
    prompt = "a red ball moving right on black"
    a, b = (g.generate(prompt, seed=1, steps=3).frames for g in (plain, framed))
    assert np.array_equal(a, b)  # no frame is given
    a, b = (g.extend(clip[:8], prompt, seed=1, steps=3, new_frames=8).frames for g in (plain, framed))
    assert np.array_equal(a[:8], b[:8]) and not np.array_equal(a[8:], b[8:])


def test_a_generation_naming_no_guidance_samples_with_the_models_own_for_its_mode(gen, clip):
    own = Generator(woken(dataclasses.replace(gen.dit.config, guidance=3.0, continue_guidance=1.5)), gen.autoencoder,
                    "test", "cpu")
    prompt = "a red ball moving right on black"
    text = own.generate(prompt, seed=1, steps=2)
    assert text.record["guidance"] == 3.0
    assert np.array_equal(text.frames, own.generate(prompt, seed=1, steps=2, guidance=3.0).frames)
    continued = own.extend(clip[:8], prompt, seed=1, steps=2, new_frames=8)
    assert continued.record["guidance"] == 1.5
    assert np.array_equal(continued.frames, own.extend(clip[:8], prompt, seed=1, steps=2, new_frames=8,
                                                       guidance=1.5).frames)
    asked = own.extend(clip[:8], prompt, seed=1, steps=2, new_frames=8, guidance=3.0)
    assert asked.record["guidance"] == 3.0 and not np.array_equal(asked.frames, continued.frames)


def test_make_runs_each_mode_from_its_params_as_the_mode_methods_do(gen, clip):
    region = Region(x=0.25, y=0.125, width=0.5, height=0.375)
    box = region.mask(64, 64)

    def params(mode: str, **fields) -> GenerationParams:
        edits = mode in ("inpaint", "outpaint")
        return GenerationParams(mode=mode, prompt="a red ball", video_id="ab" * 16, steps=2,
                                region=region if edits else None, **fields)

    made = {mode: gen.make(params(mode, **fields), given) for mode, given, fields in (
        ("continue", clip, {"frames": 4}), ("animate", clip[:1], {"frames": 5}),
        ("variation", clip, {"strength": 0.3}), ("inpaint", clip, {}), ("outpaint", clip, {}))}
    called = {"continue": gen.extend(clip, "a red ball", steps=2, new_frames=4),
              "animate": gen.animate(clip[0], "a red ball", steps=2, frames=5),
              "variation": gen.vary(clip, "a red ball", strength=0.3, steps=2),
              "inpaint": gen.inpaint(clip, box, "a red ball", steps=2),
              "outpaint": gen.outpaint(clip, box, "a red ball", steps=2)}
    for mode, clip_made in made.items():
        assert np.array_equal(clip_made.frames, called[mode].frames), mode
        assert clip_made.record["mode"] == called[mode].record["mode"] == mode
    assert made["continue"].frames.shape[0] == 20 and made["animate"].frames.shape[0] == 5
    assert np.array_equal(made["inpaint"].frames[:, ~box], clip[:, ~box])
    assert np.array_equal(made["outpaint"].frames[:, box], clip[:, box])


def test_make_takes_frames_for_every_mode_but_text(gen, clip):
    with pytest.raises(ValueError, match="starts from no frames"):
        gen.make(GenerationParams(prompt="a red ball", steps=1), clip)
    with pytest.raises(ValueError, match="starts from given frames"):
        gen.make(GenerationParams(prompt="a red ball", mode="continue", video_id="abcd", steps=1))
    with pytest.raises(ValueError, match="exactly 1 frames"):
        gen.make(GenerationParams(prompt="a red ball", mode="animate", video_id="abcd", steps=1), clip)


def test_a_region_is_a_pixel_box_of_at_least_one_pixel():
    mask = Region(x=0.5, y=0.25, width=0.25, height=0.5).mask(8, 16)
    assert mask.shape == (8, 16) and mask[2:6, 8:12].all() and mask.sum() == 16
    assert Region(x=0.99, y=0.99, width=0.01, height=0.01).mask(8, 8).sum() == 1


def test_given_frames_of_any_size_are_squared_to_the_generators_frames(gen, clip):
    wide = np.pad(clip.repeat(2, axis=1).repeat(2, axis=2), ((0, 0), (0, 0), (32, 32), (0, 0)))  # 128 x 192
    out = gen.extend(wide, "a red ball", steps=1, new_frames=2)
    assert out.frames.shape == (18, 64, 64, 3) and np.array_equal(out.frames[:16], square_frames(wide, 64))


def test_the_mode_methods_validate_by_the_model_of_the_api(gen):
    """One set of bounds: the pipeline took steps up to 1000 and guidance up to 50 before."""
    bad = {"steps": 201, "guidance": 20.5, "seed": -1, "frames": 129, "negative_prompt": "x" * 501}
    for name, value in bad.items():
        with pytest.raises(ValidationError, match=name):
            gen.generate("a red ball", **{name: value})
    with pytest.raises(ValidationError, match="stepz"):
        gen.generate("a red ball", stepz=2)


def test_the_checkpoint_says_the_frame_size_and_rate_older_ones_the_worlds(gen, tmp_path):
    faster = Generator(STDiT(dataclasses.replace(gen.dit.config, fps=12)), gen.autoencoder, "test", "cpu")
    clip = faster.generate("a red ball", steps=1)
    assert faster.fps == clip.fps == clip.record["fps"] == 12
    older = {k: v for k, v in dataclasses.asdict(gen.dit.config).items() if k not in ("frame_size", "fps")}
    save_weights(tmp_path / "older.safetensors", gen.dit, older)  # written before the fields
    save_autoencoder(tmp_path / AUTOENCODER, gen.autoencoder)
    loaded = Generator.load(str(tmp_path / "older.safetensors"), "cpu")
    assert (loaded.frame_size, loaded.fps) == (world.SIZE, world.FPS)
    with pytest.raises(ValueError, match="latents of 128 px frames, but its autoencoder makes 4 x 16 x 16"):
        Generator(STDiT(dataclasses.replace(gen.dit.config, frame_size=128)), gen.autoencoder, "test", "cpu")

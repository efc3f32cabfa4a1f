"""The frame autoencoder: shapes, calibrated latents, object weighting, training and resuming."""

import pytest
import torch

from generator import world
from generator.autoencoder import (
    AE_CONFIGS,
    FrameAutoencoder,
    grow_decoder,
    load_autoencoder,
    object_mask,
    to_uint8,
    to_video_tensor,
    train_autoencoder,
    world_frames,
)


def test_encode_decode_shapes():
    torch.manual_seed(0)
    model = FrameAutoencoder(AE_CONFIGS["test"]).eval()
    video = torch.rand(2, 3, 3, 64, 64) * 2 - 1  # (B, T, 3, H, W)
    latents = model.encode(video)
    assert latents.shape == (2, 3, 4, 8, 8)
    assert model.decode(latents).shape == video.shape


def test_calibrate_gives_unit_latents():
    torch.manual_seed(0)
    model = FrameAutoencoder(AE_CONFIGS["test"]).eval()
    frames = world_frames(seed=1, start=0, clips=4, per_clip=4, device="cpu")
    model.calibrate(frames)
    z = model.encode(frames[None])[0].transpose(0, 1).flatten(1)  # (C, N*h*w)
    assert torch.allclose(z.mean(1), torch.zeros(4), atol=1e-4)
    assert torch.allclose(z.std(1), torch.ones(4), atol=1e-3)
    decoded = model.decode(model.encode(frames[None]))[0]
    assert torch.allclose(decoded, model.decoder(model.encoder(frames)), atol=1e-5)


def test_object_mask_finds_objects_not_gradients():
    sunset = world.backgrounds(["at sunset"])[None].permute(0, 1, 4, 2, 3)  # (1, 1, 3, H, W)
    assert object_mask(sunset[0] / 127.5 - 1, 0.1).sum() == 0
    (clip,) = world.sample_clips(seed=0, start=0, count=1)
    frames = to_video_tensor(clip.frames)  # (T, 3, H, W)
    share = object_mask(frames, 0.1).mean().item()
    radius = clip.spec.objects[0].radius
    assert 0.5 * radius**2 / 64**2 < share < 2 * len(clip.spec.objects) * (2 * radius + 2) ** 2 / 64**2


def test_uint8_round_trip():
    (clip,) = world.sample_clips(seed=0, start=0, count=1)
    assert (to_uint8(to_video_tensor(clip.frames)) == clip.frames).all()


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    model = FrameAutoencoder(AE_CONFIGS["test"])
    frames = world_frames(seed=2, start=0, clips=4, per_clip=2, device="cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss, _ = model.loss(frames)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) < 0.7 * sum(losses[:5])


def test_train_writes_weights_and_resumes(tmp_path):
    config = AE_CONFIGS["test"]
    metrics = train_autoencoder(tmp_path, steps=2, batch=8, config=config, checkpoint_every=1)
    assert {"psnr", "psnr_objects", "loss"} <= metrics.keys()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2
    metrics = train_autoencoder(tmp_path, steps=3, batch=8, config=config, checkpoint_every=1)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 3
    model, extra = load_autoencoder(tmp_path / "autoencoder.safetensors")
    assert model.config == config and extra["steps"] == 3
    assert not torch.equal(model.latent_scale, torch.ones(4))  # calibrated after training


def test_decoder_only_keeps_the_encoder_and_its_latents_and_trains_the_decoder(tmp_path):
    config = AE_CONFIGS["test"]
    train_autoencoder(tmp_path / "first", steps=2, batch=8, config=config)
    before, _ = load_autoencoder(tmp_path / "first" / "autoencoder.safetensors")
    metrics = train_autoencoder(tmp_path / "decoder", steps=3, batch=8, lr=1e-2, init=tmp_path / "first" /
                                "autoencoder.safetensors", decoder_only=True, object_weight=30.0)
    after, extra = load_autoencoder(tmp_path / "decoder" / "autoencoder.safetensors")
    assert extra["decoder_only"] is True and metrics["steps"] == 3 and after.config.object_weight == 30.0
    assert extra["steps_total"] == 2 + 3  # numbered after the first run's frames: it sees fresh ones
    old, new = before.state_dict(), after.state_dict()
    decoder = [name for name in old if name.startswith("decoder.")]
    kept = [name for name in old if name not in decoder]  # the encoder and the latent shift and scale
    assert kept and all(torch.equal(old[name], new[name]) for name in kept)  # the generator's latents stay
    assert any(not torch.equal(old[name], new[name]) for name in decoder)


def test_decoder_only_needs_a_trained_autoencoder(tmp_path):
    with pytest.raises(ValueError, match="give init"):
        train_autoencoder(tmp_path, steps=1, batch=8, config=AE_CONFIGS["test"], decoder_only=True)


def test_a_grown_decoder_decodes_as_before_until_trained_and_only_grows():
    torch.manual_seed(0)
    model = FrameAutoencoder(AE_CONFIGS["test"]).eval()
    latents = torch.randn(1, 2, 4, 8, 8)
    grown = grow_decoder(model, 2)
    assert grown.config.refine_blocks == 2 and len(grown.decoder) == len(model.decoder) + 2
    assert torch.equal(grown.decode(latents), model.decode(latents))
    assert torch.equal(grow_decoder(grown, 3).decode(latents), model.decode(latents))
    with pytest.raises(ValueError, match="only grow"):
        grow_decoder(grown, 1)


def test_decoder_only_grows_the_decoder_and_the_file_keeps_it(tmp_path):
    config = AE_CONFIGS["test"]
    train_autoencoder(tmp_path / "first", steps=1, batch=8, config=config)
    first = tmp_path / "first" / "autoencoder.safetensors"
    metrics = train_autoencoder(tmp_path / "grown", steps=2, batch=8, init=first, decoder_only=True, refine_blocks=1)
    model, _ = load_autoencoder(tmp_path / "grown" / "autoencoder.safetensors")
    assert model.config.refine_blocks == 1 and metrics["psnr"] > 0
    first, _ = load_autoencoder(first)
    assert first.config.refine_blocks == 0 and torch.equal(first.encoder[0].weight, model.encoder[0].weight)

"""Generator weights by the one ladder: a checkpoint path, or the built-in name of what training exports."""

import dataclasses

import pytest

from common.weights import UnknownModel
from generator import checkpoint
from generator.autoencoder import AE_CONFIGS, FrameAutoencoder, save_autoencoder
from generator.dit import DIT_CONFIGS, STDiT, save_checkpoint
from generator.pipeline import Generator


def test_what_training_exports_for_a_config_loads_by_its_builtin_name(tmp_path, monkeypatch):
    """`reelbase train generator --config base` exports to builtin_path("base"): `reelbase-base` loads it."""
    monkeypatch.setattr(checkpoint, "BUILTIN", dataclasses.replace(checkpoint.BUILTIN, folder=tmp_path))
    ae = FrameAutoencoder(AE_CONFIGS["test"])
    save_autoencoder(tmp_path / checkpoint.AUTOENCODER, ae)
    config = dataclasses.replace(DIT_CONFIGS["test"], latent_channels=ae.config.latent_channels, latent_size=8)
    export = checkpoint.builtin_path("base")
    assert export == tmp_path / "generator-base.safetensors"
    save_checkpoint(export, STDiT(config), config)
    gen = Generator.load("reelbase-base", "cpu")
    assert gen.name == "reelbase-base" and gen.dit.config == config
    assert checkpoint.BUILTIN.available() == ["reelbase-base", "reelbase-tiny"]


def test_an_unknown_generator_names_the_choices(tmp_path):
    with pytest.raises(UnknownModel) as err:
        Generator.load("reelbase-huge", "cpu")
    assert "'reelbase-huge'" in str(err.value) and "reelbase-tiny" in str(err.value)
    assert "generator-NAME.safetensors" in str(err.value) and "--config NAME" in str(err.value)
    with pytest.raises(UnknownModel, match="generator weights file not found"):
        Generator.load(str(tmp_path / "gone.safetensors"), "cpu")
    with pytest.raises(UnknownModel, match="autoencoder weights file not found"):
        Generator.load("reelbase-tiny", "cpu", autoencoder=tmp_path / "gone.safetensors")


def test_a_generator_finds_the_autoencoder_its_config_names_beside_it_and_older_ones_the_tiny_one(tmp_path):
    fine = dataclasses.replace(AE_CONFIGS["test"], widths=(8, 16))  # 16 x 16 latents
    save_autoencoder(tmp_path / checkpoint.autoencoder_file("fine"), FrameAutoencoder(fine))
    save_autoencoder(tmp_path / checkpoint.AUTOENCODER, FrameAutoencoder(AE_CONFIGS["test"]))
    config = dataclasses.replace(DIT_CONFIGS["test"], latent_channels=4, latent_size=16, patch=4, autoencoder="fine")
    save_checkpoint(tmp_path / "fine.safetensors", STDiT(config), config)
    dit_file, ae_file = checkpoint.generator_files(str(tmp_path / "fine.safetensors"))
    assert ae_file == tmp_path / "autoencoder-fine.safetensors"
    assert Generator.load(str(dit_file), "cpu").generate("a red ball", steps=1, frames=4).frames.shape == (4, 64, 64, 3)
    older = dataclasses.replace(DIT_CONFIGS["test"], latent_size=8)
    checkpoint.save_weights(tmp_path / "older.safetensors", STDiT(older),
                            {k: v for k, v in dataclasses.asdict(older).items() if k != "autoencoder"})
    assert checkpoint.generator_files(str(tmp_path / "older.safetensors"))[1] == tmp_path / checkpoint.AUTOENCODER
    with pytest.raises(ValueError, match="the DiT models 4 x 8 x 8 latents of 64 px frames, but its autoencoder "
                                         "makes 4 x 16 x 16"):
        Generator.load(str(tmp_path / "older.safetensors"), "cpu", autoencoder=ae_file)


def test_the_shipped_fine_autoencoder_is_the_fine_config_and_fits_the_fine_generator():
    from generator.autoencoder import load_autoencoder

    ae = load_autoencoder(checkpoint.WEIGHTS_DIR / checkpoint.autoencoder_file("fine"))[0]
    fine = DIT_CONFIGS["fine"]
    assert ae.config == AE_CONFIGS["fine"]
    ae.config.check_latents(fine.latent_channels, fine.latent_size, fine.frame_size)
    assert fine.autoencoder == "fine" and (fine.latent_size // fine.patch) ** 2 == 16  # tiny's tokens a frame


def test_a_file_that_is_not_safetensors_is_a_clear_error(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"not safetensors at all")
    with pytest.raises(ValueError, match="is not a safetensors model file"):
        Generator.load(str(tmp_path / "model.pt"), "cpu")

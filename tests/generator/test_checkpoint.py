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

"""The CLIP model ladder and the encoder, on the built-in model and local weight files."""

import numpy as np
import pytest
from safetensors.torch import save_file

from common.weights import UnknownModel
from indexer.encoder import ClipEncoder
from indexer.identity import model_identity, weights_digest
from indexer.milvus import ModelMismatch
from indexer.models import WEIGHTS_DIR, load_clip, random_clip
from indexer.store import VideoStore


def test_builtin_model_loads_offline_and_embeds_unit_vectors():
    encoder = ClipEncoder.load("reelbase-tiny", "cpu")
    frames = np.random.default_rng(0).integers(0, 255, (5, 64, 64, 3), dtype=np.uint8)
    images = encoder.encode_images(frames)
    texts = encoder.encode_texts(["a red ball", "a blue square at sunset"])
    assert images.shape == (5, 256) and texts.shape == (2, 256) and encoder.dim == 256
    assert np.allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)


def test_frames_of_any_size_are_resized_and_cropped():
    encoder = ClipEncoder.load("reelbase-tiny", "cpu")
    x = encoder.preprocess(np.zeros((2, 90, 160, 3), np.uint8))
    assert tuple(x.shape) == (2, 3, 64, 64)


def test_a_long_strip_costs_its_centre_square_not_its_short_side_scaled_up():
    encoder = ClipEncoder.load("reelbase-tiny", "cpu")
    strip = np.zeros((1, 8, 400_000, 3), np.uint8)
    strip[:, :, 200_000 - 4 : 200_000 + 4] = 255  # the centre square is white
    x = encoder.resize(strip)
    assert tuple(x.shape) == (1, 3, 64, 64) and np.allclose(x.numpy(), 1, atol=1e-3)


def test_explicit_weights_path_wins_over_the_builtin(tmp_path):
    model = random_clip("reelbase-tiny").model
    path = tmp_path / "mine.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    loaded = load_clip(f"reelbase-tiny:{path}")
    key = "visual.conv1.weight"
    assert np.allclose(loaded.model.state_dict()[key].numpy(), model.state_dict()[key].numpy())
    assert loaded.spec == f"reelbase-tiny:{path}"


def test_a_model_is_recorded_by_its_weights_not_by_its_name_or_place(tmp_path):
    """Retrained weights under the same name are another model; the same weights elsewhere are not."""
    builtin = WEIGHTS_DIR / "reelbase-tiny.safetensors"
    assert model_identity("reelbase-tiny") == f"reelbase-tiny@{weights_digest(builtin)}"
    model = random_clip("reelbase-tiny").model
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    here, there = tmp_path / "a" / "w.safetensors", tmp_path / "b" / "w.safetensors"
    for path in (here, there):
        path.parent.mkdir()
        save_file(state, str(path))
    assert model_identity(f"reelbase-tiny:{here}") == model_identity(f"reelbase-tiny:{there}")
    assert str(here) not in model_identity(f"reelbase-tiny:{here}")
    assert model_identity(f"reelbase-tiny:{here}") != model_identity("reelbase-tiny")
    assert ClipEncoder.load(f"reelbase-tiny:{here}", "cpu").name == model_identity(f"reelbase-tiny:{there}")

    uri = str(tmp_path / "milvus.db")
    with VideoStore(uri, clip_model=model_identity("reelbase-tiny"), dim=256):
        pass
    with pytest.raises(ModelMismatch, match="reelbase-tiny@"):
        VideoStore(uri, clip_model=model_identity(f"reelbase-tiny:{here}"), dim=256)


@pytest.mark.parametrize("spec", ["no-such-model", "ViT-B-32:no-such-tag"])
def test_unknown_specs_fail_with_what_is_available(spec):
    with pytest.raises(UnknownModel) as err:
        load_clip(spec)
    message = str(err.value)
    assert f"unknown CLIP model spec '{spec}'" in message
    assert "Built in: reelbase-tiny" in message and "ViT-B-32:laion2b_s34b_b79k" in message


def test_a_weights_file_that_is_not_there_is_named(tmp_path):
    missing = tmp_path / "w.safetensors"
    with pytest.raises(UnknownModel) as err:
        load_clip(f"NoArch:{missing}")
    assert f"CLIP weights file not found: {missing}" in str(err.value)


def test_unknown_architecture_with_existing_file(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"x")
    with pytest.raises(UnknownModel, match="unknown open_clip architecture 'NoArch'"):
        load_clip(f"NoArch:{path}")


def test_real_open_clip_architecture_with_local_weights(tmp_path):
    """A real CLIP architecture (ViT-B-32) loads from a local file, as a user's download would."""
    model = random_clip("ViT-B-32").model
    path = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    encoder = ClipEncoder.load(f"ViT-B-32:{path}", "cpu")
    assert encoder.dim == 512
    assert encoder.encode_images(np.zeros((1, 48, 64, 3), np.uint8)).shape == (1, 512)

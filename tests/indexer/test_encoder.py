"""The CLIP model ladder and the encoder, on the built-in model and local weight files."""

import numpy as np
import pytest
from safetensors.torch import save_file

from indexer.encoder import ClipEncoder
from indexer.models import UnknownModel, load_clip, random_clip


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


def test_explicit_weights_path_wins_over_the_builtin(tmp_path):
    model = random_clip("reelbase-tiny").model
    path = tmp_path / "mine.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    loaded = load_clip(f"reelbase-tiny:{path}")
    key = "visual.conv1.weight"
    assert np.allclose(loaded.model.state_dict()[key].numpy(), model.state_dict()[key].numpy())
    assert loaded.spec == f"reelbase-tiny:{path}"


@pytest.mark.parametrize("spec", ["no-such-model", "ViT-B-32:no-such-tag", "NoArch:/tmp/w.safetensors"])
def test_unknown_specs_fail_with_what_is_available(spec, tmp_path):
    with pytest.raises(UnknownModel) as err:
        load_clip(spec)
    message = str(err.value)
    assert spec.split(":")[0] in message or "not found" in message
    if "not found" not in message:
        assert "reelbase-tiny" in message and "ViT-B-32:laion2b_s34b_b79k" in message


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

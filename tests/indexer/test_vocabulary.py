"""The words a CLIP model knows: the built-in model's training words, none unknown for a real CLIP."""

import numpy as np
from safetensors.torch import save_file

from generator import world
from indexer import train_clip
from indexer.encoder import ClipEncoder
from indexer.models import WEIGHTS_DIR, random_clip
from indexer.vocabulary import read_vocabulary, words_of, write_vocabulary


def test_builtin_model_names_the_query_words_it_was_never_taught():
    encoder = ClipEncoder.load("reelbase-tiny", "cpu")
    assert encoder.unknown_words("A rabbit in a meadow, a rabbit!") == ["rabbit", "meadow"]
    notice = encoder.vocabulary_notice("a rabbit in a meadow")
    assert "'rabbit', 'meadow'" in notice and "synthetic world" in notice
    assert "REELBASE_CLIP_MODEL=ARCH:/path/to/weights" in notice and "pretrained tag" in notice
    assert encoder.unknown_words("a red ball and a blue square colliding at sunset") == []
    assert encoder.vocabulary_notice("something falling in a forest") is None


def test_the_shipped_vocabulary_is_every_word_of_the_training_texts():
    shipped = read_vocabulary(WEIGHTS_DIR / "reelbase-tiny.safetensors")
    assert shipped == train_clip.training_vocabulary()
    rng = np.random.default_rng(5)
    texts = set()
    for i in range(2000):  # what make_batch pairs with frames: full captions and random parts of them
        spec = world.sample_spec(world.clip_rng(5, i))
        texts |= {spec.caption, world.full_query(spec).text, world.partial_query(spec, rng).text}
    assert {w for t in texts for w in words_of(t)} == shipped


def test_weights_without_a_vocabulary_beside_them_know_every_word(tmp_path):
    """A real CLIP reads all English (BPE); a file's vocabulary, where one lies beside it, limits it."""
    path = tmp_path / "mine.safetensors"
    model = random_clip("reelbase-tiny").model
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    assert ClipEncoder.load(f"reelbase-tiny:{path}", "cpu").unknown_words("a rabbit in a meadow") == []
    write_vocabulary(path, {"a", "in", "rabbit"})
    assert (tmp_path / "mine.vocab.txt").read_text() == "a\nin\nrabbit\n"
    assert ClipEncoder.load(f"reelbase-tiny:{path}", "cpu").unknown_words("a rabbit in a meadow") == ["meadow"]


def test_training_writes_the_vocabulary_beside_the_weights(tmp_path, monkeypatch):
    """`reelbase train clip` exports weights and vocabulary together, so the two never disagree."""
    monkeypatch.setattr(train_clip, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setattr(train_clip, "evaluate", lambda encoder: {})  # 300 held-out clips: not this test's point
    (tmp_path / "weights").mkdir()
    cfg = train_clip.TrainConfig(steps=1, clips_per_step=2, frames_per_clip=2, warmup=1)
    train_clip.train(tmp_path / "run", cfg, export=True)
    assert (tmp_path / "weights" / "reelbase-tiny.safetensors").is_file()
    exported = read_vocabulary(tmp_path / "weights" / "reelbase-tiny.safetensors")
    assert exported == train_clip.training_vocabulary() and "ball" in exported

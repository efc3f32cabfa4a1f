"""The words a CLIP text model knows, and a notice naming the words of a query it does not.

A real CLIP reads any English through its BPE tokenizer: it has no unknown words. The built-in
`reelbase-tiny` was trained only on captions of the synthetic world ("a red ball moving left
at sunset"): its tokenizer encodes "rabbit" all the same, but the model never learned what it
means, so a search for it ranks by the words it does know, silently. Its vocabulary, the words
of its training captions, ships beside its weights as `reelbase-tiny.vocab.txt` (one word a
line, written by `reelbase train clip`); a query's other words are named to the user.
"""

from __future__ import annotations

import re
from pathlib import Path

SUFFIX = ".vocab.txt"
REAL_CLIP_HINT = ("REELBASE_CLIP_MODEL=ARCH:/path/to/weights (an open_clip architecture and its weights file) "
                  "or a pretrained tag such as ViT-B-32:laion2b_s34b_b79k")


def vocabulary_path(weights: Path) -> Path:
    """Where the vocabulary of a weights file lies: beside it, `<stem>.vocab.txt`."""
    return weights.with_name(weights.stem + SUFFIX)


def read_vocabulary(weights: Path) -> frozenset[str] | None:
    """The vocabulary beside a weights file, or None (every word known) when there is none."""
    path = vocabulary_path(weights)
    if not path.is_file():
        return None
    return frozenset(line.strip() for line in path.read_text().splitlines() if line.strip())


def write_vocabulary(weights: Path, words: set[str] | frozenset[str]) -> Path:
    """Write the vocabulary of a weights file beside it, sorted, one word a line."""
    path = vocabulary_path(weights)
    path.write_text("".join(f"{w}\n" for w in sorted(words)))
    return path


def words_of(text: str) -> list[str]:
    """The words of a text, lower-cased, in order (letters only: digits and punctuation are not words)."""
    return re.findall(r"[a-z]+", text.lower())


def unknown_words(text: str, vocabulary: frozenset[str] | None) -> list[str]:
    """The words of `text` outside `vocabulary`, each once, in order; none when every word is known."""
    if vocabulary is None:
        return []
    return list(dict.fromkeys(w for w in words_of(text) if w not in vocabulary))


def unknown_words_notice(model: str, words: list[str]) -> str | None:
    """One line for the user: which words the model does not know and how to use a real CLIP."""
    if not words:
        return None
    return (f"the CLIP model {model} does not know the word(s) {', '.join(repr(w) for w in words)}: it knows only "
            "the synthetic world of coloured balls and squares it was trained on, and ranks by its other words; "
            f"for real footage use a real CLIP: {REAL_CLIP_HINT}")

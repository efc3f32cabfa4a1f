"""Prompt understanding: a prompt parsed into its semantic components, in the world's words.

The built-in models know only the synthetic world (docs/world.md). Parsing tells what a prompt
asks for (subject colour and shape, action, speed, environment), records it with the clip,
and names the words the model does not know, so "a dragon over a castle" gets a warning
instead of a silent ball.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from generator.world import COLOURS, DIRECTIONS, SHAPES

SHAPE_WORDS = {
    "ball": "ball", "balls": "ball", "circle": "ball", "disc": "ball", "disk": "ball",
    "square": "square", "squares": "square", "box": "square", "block": "square", "cube": "square",
}
SPEED_WORDS = {"slowly": "slowly", "slow": "slowly", "quickly": "quickly", "fast": "quickly", "quick": "quickly"}
ACTION_WORDS = {"moving": "moving", "moves": "moving", "move": "moving", "going": "moving", "travelling": "moving",
                "falling": "falling", "falls": "falling", "dropping": "falling", "drops": "falling",
                "colliding": "colliding", "collide": "colliding", "bumping": "colliding", "crashing": "colliding"}
SCENE_PHRASES = {
    "on black": "on black", "black background": "on black", "in a forest": "in a forest",
    "forest": "in a forest", "in the forest": "in a forest", "at sunset": "at sunset", "sunset": "at sunset",
}
FILLER = {"a", "an", "the", "and", "with", "of", "something", "object", "objects", "thing", "two", "one",
          "is", "are", "toward", "towards", "each", "other", "into", "to", "on", "in", "at", "background"}

assert set(SHAPE_WORDS.values()) == set(SHAPES)


def known_words() -> list[str]:
    """Every word (and the comma) of the world's captions and of what `parse_prompt` understands: the
    words the built-in models are taught, and so the rows of their token tables."""
    phrases = [*COLOURS, *DIRECTIONS, *SHAPE_WORDS, *SPEED_WORDS, *ACTION_WORDS, *SCENE_PHRASES, *FILLER, ","]
    return sorted({word for phrase in phrases for word in phrase.split()})


@dataclass
class ParsedPrompt:
    """What a prompt asks for, in the world's vocabulary; None where it does not say."""

    objects: list[dict] = field(default_factory=list)  # [{"colour": .., "shape": ..}] in prompt order
    action: str | None = None  # "moving", "falling" or "colliding"
    direction: str | None = None  # "left", "right", "up", "down"
    speed: str | None = None  # "slowly" or "quickly"; None is the normal band
    scene: str | None = None
    unknown_words: list[str] = field(default_factory=list)

    @property
    def understood(self) -> bool:
        return not self.unknown_words

    def warning(self) -> str | None:
        """A clear message when the prompt has words the built-in model was never taught."""
        if self.understood:
            return None
        return (f"the model does not know the word(s) {', '.join(repr(w) for w in self.unknown_words)}; "
                "it understands only the synthetic world: colours (" + ", ".join(COLOURS) + "), shapes (ball, "
                "square), motions (moving left/right/up/down, slowly/quickly, falling, colliding) and scenes "
                "(on black, in a forest, at sunset)")

    def to_dict(self) -> dict:
        return asdict(self)


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Parse a free-form prompt; synonyms map to the canonical words of the world (docs/world.md)."""
    text = prompt.lower()
    parsed = ParsedPrompt()
    for phrase in sorted(SCENE_PHRASES, key=len, reverse=True):
        if re.search(rf"\b{phrase}\b", text):
            parsed.scene = SCENE_PHRASES[phrase]
            text = re.sub(rf"\b{phrase}\b", " ", text)
            break
    colour = None
    for word in re.findall(r"[a-z]+", text):
        if word in COLOURS:
            colour = word
        elif word in SHAPE_WORDS:
            parsed.objects.append({"colour": colour, "shape": SHAPE_WORDS[word]})
            colour = None
        elif word in ACTION_WORDS:
            parsed.action = ACTION_WORDS[word]
        elif word in DIRECTIONS:
            parsed.direction, parsed.action = word, parsed.action or "moving"
        elif word in SPEED_WORDS:
            parsed.speed = SPEED_WORDS[word]
        elif word not in FILLER:
            parsed.unknown_words.append(word)
    if colour:  # "a red one", "something red": a colour with no shape
        parsed.objects.append({"colour": colour, "shape": None})
    return parsed

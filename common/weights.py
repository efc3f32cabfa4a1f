"""Where model weights come from: one ladder for the CLIP models and the generators.

A spec names weights; the rungs are tried in this order:
1. a path to a weights file (a path names a file: one that is not there is an error, never a
   fall-through to the next rung);
2. a built-in name: a file in a package's weights folder, shipped with it or exported there by
   `reelbase train` (`Builtins` says how the names and the files pair up);
and, for CLIP models only, open_clip's pretrained tags (indexer/models.py). A spec that names
none of them is an `UnknownModel` error naming the choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class UnknownModel(ValueError):
    """A spec that names no weights file, no built-in model and (for CLIP) no open_clip pretrained tag."""


def looks_like_path(spec: str) -> bool:
    """Whether a spec (or the part of a CLIP spec after its colon) names a file rather than a name or a tag."""
    return "/" in spec or spec.endswith(WEIGHT_SUFFIXES)


def weights_file(path: str | Path, kind: str, spec: str | None = None) -> Path:
    """Rung 1: the file a path names, or UnknownModel when there is none (`spec`: the spec it came from)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UnknownModel(f"{kind} weights file not found: {path}" + (f" (from spec '{spec}')" if spec else ""))
    return path


@dataclass(frozen=True)
class Builtins:
    """Rung 2: a package's folder of built-in weights.

    A name and its file share a key: with the patterns `names="reelbase-{}"` and
    `files="generator-{}.safetensors"`, `reelbase-base` is `generator-base.safetensors`. Every file
    in the folder that the file pattern matches is a built-in model, so what `reelbase train`
    exports there is known by name at once; `declared` names are built in even before their
    weights are there (resolving one then says how to make them).
    """

    kind: str  # what messages call a model of this folder: "CLIP model", "generator"
    folder: Path
    files: str = "{}.safetensors"
    names: str = "{}"
    declared: tuple[str, ...] = ()
    make: str = ""  # how weights get into the folder, for messages: "`reelbase train clip` writes them"

    def available(self) -> list[str]:
        """The built-in names: the declared ones and those of the files in the folder."""
        prefix, suffix = self.files.split("{}")
        keys = (p.name[len(prefix):len(p.name) - len(suffix)] for p in self.folder.glob(self.files.format("*")))
        return sorted({*self.declared, *(self.names.format(key) for key in keys if key)})

    def path(self, name: str) -> Path:
        """Where the weights of the built-in `name` are, or are written to (whether or not they are there)."""
        prefix, suffix = self.names.split("{}")
        if not (name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix) + len(suffix)):
            raise UnknownModel(f"'{name}' is no {self.kind} name: built-in names are {self.names.format('NAME')}")
        return self.folder / self.files.format(name[len(prefix):len(name) - len(suffix)])

    def resolve(self, name: str) -> Path:
        """The weights file of a built-in name, or UnknownModel naming the choices."""
        if name not in self.available():
            raise UnknownModel(f"unknown {self.kind} '{name}': give {self.choices()}")
        path = self.path(name)
        if not path.is_file():
            raise UnknownModel(f"built-in {self.kind} '{name}' has no weights at {path}; {self.make}")
        return path

    def choices(self) -> str:
        """What a spec of this folder may be, for messages."""
        names = ", ".join(self.available()) or "none yet"
        return (f"a weights file or a built-in name ({names}: the {self.files.format('NAME')} files in "
                f"{self.folder}; {self.make})")


def resolve(spec: str, builtins: Builtins) -> Path:
    """The weights file a spec names: a path to a file (rung 1), else a built-in name (rung 2)."""
    if looks_like_path(spec):
        return weights_file(spec, builtins.kind)
    return builtins.resolve(spec)

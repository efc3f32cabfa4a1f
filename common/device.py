"""Which device runs a model: one resolver for the CLIP encoder, the generator and training."""

from __future__ import annotations

DEVICES = "auto, cpu, cuda or cuda:N"


def resolve_device(device: str) -> str:
    """`auto` is CUDA where present, else the CPU; any other name torch knows (cpu, cuda, cuda:N) is kept
    as it is, and one it does not know is a ValueError naming the choices."""
    import torch  # here, not at the top: what imports this module may not need torch at all

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}: give {DEVICES}") from None
    return device

"""The weights ladder: a path names a file, a name a built-in model; what is neither is told the choices."""

import pytest
import torch

from common.device import resolve_device
from common.weights import Builtins, UnknownModel, resolve


@pytest.fixture
def builtins(tmp_path):
    (tmp_path / "generator-base.safetensors").write_bytes(b"base")
    (tmp_path / "notes.txt").write_text("not weights")
    return Builtins("generator", tmp_path, files="generator-{}.safetensors", names="reelbase-{}",
                    declared=("reelbase-tiny",), make="train some")


def test_a_path_names_a_file_and_a_missing_one_is_an_error(builtins, tmp_path):
    mine = tmp_path / "elsewhere" / "mine.safetensors"
    mine.parent.mkdir()
    mine.write_bytes(b"mine")
    assert resolve(str(mine), builtins) == mine
    with pytest.raises(UnknownModel, match="generator weights file not found"):
        resolve(str(tmp_path / "gone.safetensors"), builtins)  # never falls through to a name


def test_a_name_is_a_file_of_the_weights_folder(builtins, tmp_path):
    assert builtins.available() == ["reelbase-base", "reelbase-tiny"]
    assert resolve("reelbase-base", builtins) == tmp_path / "generator-base.safetensors"
    assert builtins.path("reelbase-large") == tmp_path / "generator-large.safetensors"  # where training writes it
    with pytest.raises(UnknownModel, match="'reelbase-tiny' has no weights at .*generator-tiny.safetensors; train"):
        resolve("reelbase-tiny", builtins)  # declared, not there yet


def test_an_unknown_name_is_told_the_choices(builtins):
    with pytest.raises(UnknownModel) as err:
        resolve("reelbase-huge", builtins)
    assert "unknown generator 'reelbase-huge'" in str(err.value)
    assert "(reelbase-base, reelbase-tiny: the generator-NAME.safetensors files in" in str(err.value)


def test_devices_resolve_once_for_every_model():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ValueError, match="unknown device 'gpu0': give auto, cpu, cuda or cuda:N"):
        resolve_device("gpu0")

"""Same seed, same clip: frames and mp4 bytes do not depend on the process or the thread count."""

import json
import subprocess
import sys

import numpy as np
import torch

from generator.flow import initial_noise
from generator.pipeline import SAMPLING_THREADS
from generator.video import write_mp4
from tests.generator.test_pipeline import gen  # noqa: F401  (a small random Generator)

PROMPT = "a blue square moving left in a forest"

# Generates with the shipped model under a given torch thread count; prints the frames' and the
# mp4's sha256. 5 threads: the split of float32 matmuls and convolutions differs from 1 thread.
GENERATE = """
import hashlib, json, sys
import torch
torch.set_num_threads(int(sys.argv[1]))
from generator.pipeline import Generator
from generator.video import write_mp4
clip = Generator.load("reelbase-tiny", "cpu").generate(sys.argv[2], seed=3, steps=4)
mp4 = write_mp4(sys.argv[3], clip.frames, clip.fps)
print(json.dumps({"frames": hashlib.sha256(clip.frames.tobytes()).hexdigest(),
                  "mp4": hashlib.sha256(mp4.read_bytes()).hexdigest()}))
"""


def generate_in_subprocess(threads: int, out) -> dict:
    done = subprocess.run([sys.executable, "-c", GENERATE, str(threads), PROMPT, str(out)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_same_seed_same_frames_and_mp4_across_processes_and_thread_counts(tmp_path):
    one = generate_in_subprocess(1, tmp_path / "one.mp4")
    five = generate_in_subprocess(5, tmp_path / "five.mp4")
    assert one["frames"] == five["frames"]
    assert one["mp4"] == five["mp4"]


def test_sampling_runs_under_the_fixed_thread_count_and_restores_the_callers(gen):  # noqa: F811
    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        gen.generate(PROMPT, seed=1, steps=2, callback=lambda i, n: seen.append(torch.get_num_threads()))
        assert seen == [SAMPLING_THREADS] * 2
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_noise_comes_from_the_seeded_generator_not_the_global_rng():
    """The seed's noise comes from its own generator on the generator's device (the pipeline's is a
    CPU one, so a seed means the same start on every device); the global RNG plays no part."""
    torch.manual_seed(123)
    a = initial_noise((2, 3), torch.Generator().manual_seed(7), "cpu")
    torch.manual_seed(456)
    b = initial_noise((2, 3), torch.Generator().manual_seed(7), "cpu")
    assert torch.equal(a, b) and torch.equal(a, torch.randn((2, 3), generator=torch.Generator().manual_seed(7)))


def test_mp4_is_encoded_on_one_x264_thread_whatever_the_cores(tmp_path):
    """x264's output depends on its thread count (by default from the cores, for frames this size)."""
    frames = np.random.default_rng(0).integers(0, 256, (4, 256, 256, 3), dtype=np.uint8)
    data = write_mp4(tmp_path / "big.mp4", frames, 8).read_bytes()
    assert b" threads=1 " in data  # x264 writes its settings into the stream

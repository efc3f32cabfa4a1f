"""The Generator: a prompt (and frames to keep) in, a clip out.

Every mode is one mechanism: what is given is kept, the rest is generated. Whole given frames
condition the DiT as clean frames (animate, continue); given pixels are kept by replacement at
each sampling step (inpaint, outpaint); variations start from the clip partly noised. The
output keeps every given frame and pixel exactly: generated pixels are composited around them.

`Generator.make(params, given, callback)` is the one entry point: the `GenerationParams` of the
API, the CLI and the service, and the frames its mode starts from. The mode methods (`generate`,
`animate`, `extend`, `inpaint`, `outpaint`, `vary`) are the same for Python callers, with plain
arguments (validated by the same model) and pixel masks. A generator makes what its checkpoint
says (`frame_size`, `fps`); frames given at any size are squared to it here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from common.device import resolve_device
from generator.autoencoder import FrameAutoencoder, load_autoencoder, to_uint8, to_video_tensor
from generator.checkpoint import generator_files
from generator.dit import STDiT, load_checkpoint, tokenize
from generator.flow import NoiseSearch, model_passes, sample
from generator.motion import asked, seam_jump, search_score, shows_asked
from generator.params import GenerationParams
from generator.prompt import parse_prompt
from generator.video import square_frames

log = logging.getLogger(__name__)

CONTEXT = 4  # frames a chained window is conditioned on
# CPU threads while a window is sampled and decoded: how float32 matmuls and convolutions are
# split between threads changes their rounding, and 30 Euler steps grow that into different
# pixels, so a seed makes the same clip only under one fixed count (1 is fastest on a busy box).
SAMPLING_THREADS = 1
SEARCHED_MODES = ("text", "animate", "continue")  # modes whose windows make motion (`_candidates_searched`)
SEAM_GIVEN = 2  # whole given frames from which a window's search keeps their motion across the seam (`_search`)

# callback(step, total) -> False to cancel; steps count across all windows of a long clip
StepCallback = Callable[[int, int], bool | None]


@dataclass
class Clip:
    """Generated frames with the record of how they were made."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: int
    record: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Window:
    """What one sampled window starts from: `given` pixels kept exactly where `keep`, or (a variation)
    a clip to noise to the params' strength; nothing for text. Window `index` of a clip draws its
    noise from seed + 1000 * index."""

    given: np.ndarray | None = None  # (T, S, S, 3) uint8
    keep: np.ndarray | None = None  # (T, S, S) bool
    start: np.ndarray | None = None  # (T, S, S, 3) uint8
    index: int = 0


@dataclass(frozen=True)
class Progress:
    """A step callback for the whole clip, told each window's model passes (`passes`, one count a window:
    its steps, and its noise search's probes) as passes of them all."""

    callback: StepCallback | None
    passes: tuple[int, ...]

    def of_window(self, index: int) -> Callable[[int, int, torch.Tensor], bool | None] | None:
        if self.callback is None:
            return None
        before, total = sum(self.passes[:index]), sum(self.passes)
        return lambda step, _steps, _latents: self.callback(before + step, total)


@contextmanager
def fixed_threads(n: int) -> Iterator[None]:
    """torch's CPU thread count (this thread's) set to n within the block, then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Generator:
    """A trained ST-DiT with its frame autoencoder."""

    def __init__(self, dit: STDiT, autoencoder: FrameAutoencoder, name: str, device: str = "cpu"):
        config = dit.config
        autoencoder.config.check_latents(config.latent_channels, config.latent_size, config.frame_size)
        self.dit = dit.to(device).eval()
        self.autoencoder = autoencoder.to(device).eval()
        self.name = name
        self.device = torch.device(device)
        self.window = config.frames  # frames the model makes at once
        self.frame_size = config.frame_size  # frames are frame_size x frame_size pixels
        self.fps = config.fps

    @classmethod
    def load(cls, spec: str = "reelbase-tiny", device: str = "auto",
             autoencoder: str | Path | None = None) -> Generator:
        """A checkpoint path or a built-in name (generator.checkpoint), with its autoencoder beside it or given."""
        device = resolve_device(device)
        dit_path, ae_path = generator_files(spec, autoencoder)
        dit, _, _ = load_checkpoint(dit_path, device)
        ae, _ = load_autoencoder(ae_path, device)
        return cls(dit, ae, spec, device)

    # --- the entry point -------------------------------------------------------------------

    def make(self, params: GenerationParams, given: np.ndarray | None = None, callback: StepCallback | None = None,
             *, context: int = CONTEXT) -> Clip:
        """One generation of any mode, from `given` frames ((T, H, W, 3) uint8, any size: squared here): the
        image for animate (one frame), the clip so far for continue, one window (`self.window` frames) for
        variation, inpaint and outpaint (the region in fractions of the frame); none for text. `context`:
        the frames each new window of a continued clip is conditioned on."""
        if params.mode == "text":
            if given is not None:
                raise ValueError("mode 'text' starts from no frames")
            return self._text(params, callback)
        if given is None:
            raise ValueError(f"mode '{params.mode}' starts from given frames")
        if params.mode == "animate":
            return self._animate(params, self._given(given, exactly=1)[0], callback)
        if params.mode == "continue":
            return self._extend(params, self._given(given), context, callback)
        window = self._given(given, exactly=self.window)
        if params.mode == "variation":
            return self._vary(params, window, callback)
        box = params.region.mask(self.frame_size, self.frame_size)  # inpaint: regenerated; outpaint: kept
        return self._inpaint(params, window, box if params.mode == "inpaint" else ~box, callback)

    # --- the modes for Python callers: plain arguments, pixel masks --------------------------
    # `settings` are GenerationParams fields: negative_prompt, seed, steps, guidance.

    def generate(self, prompt: str, *, frames: int = 16, callback: StepCallback | None = None, **settings) -> Clip:
        """Text to video; clips longer than the model's window are chained windows."""
        return self._text(_params("text", prompt, frames=frames, **settings), callback)

    def animate(self, image: np.ndarray, prompt: str, *, frames: int = 16, callback: StepCallback | None = None,
                **settings) -> Clip:
        """Image to video: the image is the first frame."""
        image = self._given(np.asarray(image)[None])[0]
        return self._animate(_params("animate", prompt, frames=frames, **settings), image, callback)

    def extend(self, frames: np.ndarray, prompt: str, *, new_frames: int = 16, context: int = CONTEXT,
               callback: StepCallback | None = None, **settings) -> Clip:
        """Continue a clip: the given frames, then `new_frames` more, each window conditioned on the last ones."""
        params = _params("continue", prompt, frames=new_frames, **settings)
        return self._extend(params, self._given(frames), context, callback)

    def inpaint(self, frames: np.ndarray, mask: np.ndarray, prompt: str, *, callback: StepCallback | None = None,
                **settings) -> Clip:
        """Regenerate where `mask` is True ((S, S) or (T, S, S) at frame_size S); keep every other pixel."""
        params = _params("inpaint", prompt, **settings)
        return self._inpaint(params, self._given(frames, exactly=self.window), mask, callback)

    def outpaint(self, frames: np.ndarray, keep: np.ndarray, prompt: str, *, callback: StepCallback | None = None,
                 **settings) -> Clip:
        """Regenerate everything outside `keep` ((S, S) or (T, S, S) bool at frame_size S)."""
        params = _params("outpaint", prompt, **settings)
        return self._inpaint(params, self._given(frames, exactly=self.window), ~np.asarray(keep, bool), callback)

    def vary(self, frames: np.ndarray, prompt: str, *, strength: float = 0.6, callback: StepCallback | None = None,
             **settings) -> Clip:
        """A variation: the clip noised to `strength` (0 keeps it, 1 ignores it), then denoised with the prompt."""
        params = _params("variation", prompt, strength=strength, **settings)
        return self._vary(params, self._given(frames, exactly=self.window), callback)

    # --- what each mode gives the one mechanism ------------------------------------------------

    def _text(self, params: GenerationParams, callback: StepCallback | None) -> Clip:
        """A window from noise, then (for a longer clip) windows chained on its last frames."""
        return self._opened(params, 0, lambda progress: self._run(params, Window(), progress), callback)

    def _animate(self, params: GenerationParams, image: np.ndarray, callback: StepCallback | None) -> Clip:
        """A window that starts at the image, then (for a longer clip) windows chained on its last frames: given
        several frames, not the one frame the image's window had, so they carry on its motion."""
        return self._opened(params, 1, lambda progress: self._chain(params, image[None], self.window - 1, 1, progress),
                            callback)

    def _opened(self, params: GenerationParams, given: int, first_window: Callable[[Progress], np.ndarray],
                callback: StepCallback | None) -> Clip:
        """A clip opened by one window given `given` whole frames (`first_window(progress)` makes its frames),
        then, for a longer clip, windows each given the last CONTEXT frames, whose seams keep their motion."""
        more = max(0, params.frames - self.window)
        context = self._context(CONTEXT, self.window)
        chained = self._windows(more, context)
        progress = Progress(callback, (self._passes(params, given),) + (self._passes(params, context),) * chained)
        frames = first_window(progress)
        if more:
            frames = self._chain(params, frames, more, context, progress, first=1)
        chained_searched = self._candidates_searched(params, context) if chained else 1
        return self._finish(params, frames[:params.frames],
                            candidates=max(self._candidates_searched(params, given), chained_searched))

    def _extend(self, params: GenerationParams, given: np.ndarray, context: int,
                callback: StepCallback | None) -> Clip:
        used = self._context(context, len(given))
        progress = Progress(callback, (self._passes(params, used),) * self._windows(params.frames, used))
        frames = self._chain(params, given, params.frames, used, progress)
        return self._finish(params, frames, candidates=self._candidates_searched(params, used), context=context,
                            given_frames=len(given), seam=len(given))

    def _inpaint(self, params: GenerationParams, window: np.ndarray, mask: np.ndarray,
                 callback: StepCallback | None) -> Clip:
        keep = ~self._pixel_mask(mask, window)
        progress = Progress(callback, (self._passes(params, 0),))
        return self._finish(params, self._run(params, Window(given=window, keep=keep), progress))

    def _vary(self, params: GenerationParams, window: np.ndarray, callback: StepCallback | None) -> Clip:
        frames = self._run(params, Window(start=window), Progress(callback, (self._passes(params, 0),)))
        return self._finish(params, frames, strength=params.strength)

    # --- the one mechanism -----------------------------------------------------------------

    def _chain(self, params: GenerationParams, frames: np.ndarray, new: int, context: int, progress: Progress,
               first: int = 0) -> np.ndarray:
        """Windows from `first` on, each with the last `context` frames given, until `new` frames are made."""
        size, made = self.frame_size, len(frames) + new
        for index in range(first, first + self._windows(new, context)):
            given = np.zeros((self.window, size, size, 3), np.uint8)
            given[:context] = frames[-context:]
            keep = np.zeros(given.shape[:3], bool)
            keep[:context] = True
            out = self._run(params, Window(given=given, keep=keep, index=index), progress)
            frames = np.concatenate([frames, out[context:]])
        return frames[:made]

    def _run(self, params: GenerationParams, window: Window, progress: Progress) -> np.ndarray:
        """One window (`_sample_window`), under the fixed thread count that makes a seed's clip exact."""
        with fixed_threads(SAMPLING_THREADS):
            return self._sample_window(params, window, progress)

    @torch.no_grad()
    def _sample_window(self, params: GenerationParams, window: Window, progress: Progress) -> np.ndarray:
        """Sample latents keeping the given pixels, decode, composite: (T, S, S, 3) uint8."""
        config = self.dit.config
        # A CPU generator on every device: a seed draws the same noise on the CPU and a GPU.
        generator = torch.Generator().manual_seed(params.seed + 1_000 * window.index)
        tokens = tokenize([params.prompt], config.context_length).to(self.device)
        neg = tokenize([params.negative_prompt], config.context_length).to(self.device) \
            if params.negative_prompt else None
        known = known_mask = start_latents = None
        if window.given is not None:
            known, known_mask = self._known_latents(window.given, window.keep)
        if window.start is not None:
            start_latents = self.autoencoder.encode(to_video_tensor(window.start[None], self.device))
        shape = (1, self.window, config.latent_channels, config.latent_size, config.latent_size)
        latents = sample(self.dit, shape, tokens, neg, steps=params.steps, guidance=self.guidance(params),
                         generator=generator, known=known, known_mask=known_mask, start_latents=start_latents,
                         strength=params.strength, **config.sampling, search=self._search(params, window),
                         callback=progress.of_window(window.index))
        frames = to_uint8(self.autoencoder.decode(latents))[0]  # (T, H, W, 3)
        if window.given is not None:
            frames = np.where(window.keep[..., None], window.given, frames)  # given pixels exactly as they were
        return frames

    def _search(self, params: GenerationParams, window: Window) -> NoiseSearch | None:
        """The noise search where `_candidates_searched` says a window searches. A window given SEAM_GIVEN whole
        frames or more keeps their motion across the seam (`generator.motion.seam_jump`), judged on each
        candidate's finished clip; one given fewer shows what the prompt asks (`generator.motion.search_score`),
        judged on each candidate's clip as predicted at the model's probe time (`_probe_time`), then finished
        in the judge's order until one shows all the prompt asks (`_checks`: `generator.motion.shows_asked`),
        in up to the model's `search_rounds` rounds of candidates. The judge and the check see the given pixels
        in place."""
        given = self._whole_frames_given(window)
        candidates = self._candidates_searched(params, given)
        if candidates == 1:
            return None
        wanted = None if given >= SEAM_GIVEN else asked(params.prompt)  # None: the seam is judged
        judged = self._judged_frames(window)

        def judge(predicted: torch.Tensor) -> float:
            frames = judged(predicted)
            return -seam_jump(frames, given) if wanted is None else search_score(frames, wanted)

        def check(finished: torch.Tensor) -> float:
            return shows_asked(judged(finished), wanted)

        checked = self._checks(params, given)
        return NoiseSearch(candidates, self._probe_time(given), judge, check if checked else None,
                           self.dit.config.search_rounds)  # rounds apply to a checked search only

    def _judged_frames(self, window: Window) -> Callable[[torch.Tensor], torch.Tensor]:
        """What a search's judge sees of a candidate's predicted latents (1, T, C, h, w): its decoded clip
        (T, 3, H, W) with the window's given pixels in place; frames given whole are not decoded."""
        if window.given is None:
            return lambda predicted: self.autoencoder.decode(predicted)[0]
        given = to_video_tensor(window.given[None], self.device)[0]  # (T, 3, H, W)
        keep = torch.from_numpy(np.ascontiguousarray(window.keep))[:, None].to(self.device)  # (T, 1, H, W)
        made = ~keep.flatten(1).all(1)  # (T,) frames not given whole

        def judged(predicted: torch.Tensor) -> torch.Tensor:
            frames = given.clone()
            frames[made] = self.autoencoder.decode(predicted[:, made])[0]
            return torch.where(keep, given, frames)

        return judged

    def _candidates_searched(self, params: GenerationParams, given: int) -> int:
        """The starting noises a window given `given` whole frames searches, in a mode that makes motion (else
        1): given fewer than SEAM_GIVEN frames, the generation's candidates where its prompt asks for motion
        (a way, falling, colliding), else 1; continuing the motion of SEAM_GIVEN frames or more, the
        candidates the request asks for, or the model's own for a seam (`DiTConfig.seam_candidates`)."""
        if params.mode not in SEARCHED_MODES:
            return 1
        if given < SEAM_GIVEN:
            wanted = asked(params.prompt)
            return self.candidates(params, wanted.path) if wanted.moves else 1
        return params.candidates if params.candidates is not None else self.dit.config.seam_candidates

    def _checks(self, params: GenerationParams, given: int) -> bool:
        """Whether a window's search checks each finished clip for what its prompt asks
        (`generator.motion.shows_asked`): wherever it searches for the prompt's motion. The judge reads that
        motion early, where the noise sets it; an object that then slows and stops short of an edge, splits,
        or passes through another shows only in the finished clip (model card, sessions 23 and 25)."""
        return given < SEAM_GIVEN and asked(params.prompt).moves

    def _probe_time(self, given: int) -> float:
        """Where a window given `given` whole frames judges its candidates: a prompt's motion at the model's
        probe time, early, where the noise sets it and the judge reads it; a seam at the end (0), on each
        finished clip, since an early prediction blurs the first new frame that the seam is read from (model
        card, sessions 22 and 23)."""
        return 0.0 if given >= SEAM_GIVEN else self.dit.config.probe_time

    @staticmethod
    def _whole_frames_given(window: Window) -> int:
        """How many of a window's frames are given whole (they lead it: `_chain` gives its first frames)."""
        return 0 if window.keep is None else int(window.keep.all(axis=(1, 2)).sum())

    def _passes(self, params: GenerationParams, given: int) -> int:
        """The model passes of a window given `given` whole frames (`flow.model_passes`)."""
        config = self.dit.config
        t_start = params.strength if params.mode == "variation" else 1.0
        return model_passes(params.steps, t_start, config.time_shift, self._candidates_searched(params, given),
                            self._probe_time(given), self._checks(params, given), config.search_rounds)

    def _known_latents(self, given: np.ndarray, keep: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents of the given frames and a latent mask: a cell is known when all its pixels are."""
        latents = self.autoencoder.encode(to_video_tensor(given[None], self.device))  # (1, T, C, h, w)
        h = latents.shape[-1]
        cells = torch.from_numpy(np.ascontiguousarray(keep)).float().to(self.device)  # (T, H, W)
        cell_known = -torch.nn.functional.max_pool2d(-cells[:, None], self.frame_size // h)  # (T, 1, h, w): min-pool
        return latents, cell_known[None]  # (1, T, 1, h, w)

    def _context(self, context: int, given: int) -> int:
        """The frames a chained window is conditioned on: at least 1, and no more than are given or fit."""
        return max(1, min(context, self.window - 1, given))

    def _windows(self, new: int, context: int) -> int:
        """Windows that make `new` frames, each conditioned on `context` frames."""
        return -(-new // (self.window - context))

    def _finish(self, params: GenerationParams, frames: np.ndarray, candidates: int = 1, **details) -> Clip:
        """The record of how a clip was made (`candidates`: the most starting noises any of its windows
        searched in a round; a checked search may draw the model's further rounds), with the parsed prompt and
        any warning."""
        parsed = parse_prompt(params.prompt)
        warning = parsed.warning()
        if warning:
            log.warning(warning)
        record = {"mode": params.mode, "prompt": params.prompt, "negative_prompt": params.negative_prompt,
                  "seed": params.seed, "steps": params.steps, "guidance": self.guidance(params),
                  "candidates": candidates, "frames": len(frames),
                  "fps": self.fps, "model": self.name, "parsed_prompt": parsed.to_dict(),
                  "warnings": [warning] if warning else [], "created_at": time.time(), **details}
        return Clip(np.ascontiguousarray(frames), self.fps, record)

    def candidates(self, params: GenerationParams, way: bool = True) -> int:
        """The starting noises a generation searches in a round: the number it asks for, or the model's own:
        `candidates` where its prompt names a way to move, and `wayless_candidates` where it names a motion
        without one (a fall, a collision), since more of those judged early fit the judge better, not the
        prompt: their falls keep gravity less often (model card, sessions 19, 24 and 25)."""
        config = self.dit.config
        if params.candidates is not None:
            return params.candidates
        return config.candidates if way or config.wayless_candidates is None else config.wayless_candidates

    def guidance(self, params: GenerationParams) -> float:
        """The guidance scale a generation samples with: the one it asks for, or the model's own for its mode."""
        return params.guidance if params.guidance is not None else self.dit.config.guidance_for(params.mode)

    # --- what is given ---------------------------------------------------------------------

    def _given(self, frames: np.ndarray, exactly: int | None = None) -> np.ndarray:
        """Given (T, H, W, 3) uint8 frames, centre-cropped square at frame_size; or a clear error."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or 0 in frames.shape[1:3]:
            raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        if len(frames) == 0:
            raise ValueError("no frames given")
        if exactly and len(frames) != exactly:
            raise ValueError(f"this mode takes exactly {exactly} frames, got {len(frames)}")
        return square_frames(frames, self.frame_size)

    def _pixel_mask(self, mask: np.ndarray, window: np.ndarray) -> np.ndarray:
        """A (S, S) or (T, S, S) mask as (T, S, S) bool for the window, or a clear error."""
        try:
            return np.broadcast_to(np.asarray(mask, bool), window.shape[:3])
        except ValueError:
            size = self.frame_size
            raise ValueError(f"a mask must be ({size}, {size}) or ({len(window)}, {size}, {size}), "
                             f"got {np.shape(mask)}") from None


def _params(mode: str, prompt: str, **fields) -> GenerationParams:
    """A mode method's plain arguments as GenerationParams, validated by the model the API and the CLI use
    (every bound). Its source rules are the request's (a library video, a region in fractions); a Python
    caller gives frames and pixel masks instead, so the mode is set after validation."""
    return GenerationParams(prompt=prompt, **fields).model_copy(update={"mode": mode})

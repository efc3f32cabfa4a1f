"""The tracker reads the simulator's own clips back (the ceiling of the generation evaluation) and
fails clips that break the caption: noise, a blank scene, a wrong colour, shuffled or reversed time."""

import dataclasses
import logging

import numpy as np
import pytest

from generator import evaluation, tracker, world
from generator.world import ClipSpec, ObjectSpec

N = 150
METRICS = ("colour", "shape", "count", "direction", "speed_band", "gravity", "permanence")
log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def clips():
    return world.sample_clips(seed=11, start=0, count=N)


@pytest.fixture(scope="module")
def h264(clips, tmp_path_factory):
    """The same clips after an H.264 round trip: written with write_mp4, read back with decord."""
    decord = pytest.importorskip("decord")
    from generator.video import write_mp4

    folder = tmp_path_factory.mktemp("h264")
    frames = []
    for i, clip in enumerate(clips):
        path = write_mp4(folder / f"{i:03d}.mp4", clip.frames, world.FPS)
        frames.append(decord.VideoReader(str(path)).get_batch(range(world.NUM_FRAMES)).asnumpy())
    return frames


def summary_of(clips, frames, with_truth=True):
    results = [evaluation.evaluate_clip(f, c.spec, c.centres if with_truth else None) for c, f in zip(clips, frames)]
    return evaluation.summarize(results)


def moving_clips(clips):
    """Single movers that never reflect, so reversing time reverses every velocity."""
    movers = [c for c in clips if c.spec.objects[0].motion.startswith("moving")]
    return [c for c in movers if (np.diff(c.centres[:, 0], axis=0) @ (c.centres[1, 0] - c.centres[0, 0]) > 0).all()]


def test_label_components_is_4_connected():
    mask = np.zeros((1, 6, 6), bool)
    mask[0, :2, :2] = True  # a block
    mask[0, 2, 2] = True  # touches the block only at a corner
    mask[0, 3:, 4] = True  # a bar
    labels = tracker.label_components(mask)[0]
    assert len(np.unique(labels[labels >= 0])) == 3 and (labels[~mask[0]] == -1).all()


def test_tracks_follow_the_true_centres(clips):
    for clip in clips[:20]:
        tracks = tracker.track(clip.frames, clip.spec.scene)
        assert (tracks.counts == len(clip.spec.objects)).all()
        for k, obj in enumerate(clip.spec.objects):
            errors = [np.nanmean(np.linalg.norm(tr.centres - clip.centres[:, k], axis=1)) for tr in tracks.tracks]
            best = tracks.tracks[int(np.argmin(errors))]
            assert min(errors) < 0.3 and abs(best.radius - obj.radius) < 0.5
            assert (best.colour, best.shape) == (obj.colour, obj.shape)


def test_touching_objects_of_one_colour_stay_two_tracks():
    a, b = ObjectSpec("ball", "red", 6, "colliding"), ObjectSpec("square", "red", 5, "colliding")
    clip = world.make_clips([ClipSpec("in a forest", (a, b), (2.5, 2.0), ((12.0, 30.0), (41.0, 30.0)))])[0]
    tracks = tracker.track(clip.frames, clip.spec.scene)
    assert any(tr.merged.any() for tr in tracks.tracks)  # they do touch and merge into one blob
    result = evaluation.evaluate_clip(clip.frames, clip.spec, clip.centres)
    assert result["count"] and result["permanence"] and result["direction"] and result["shape"]
    assert result["velocity_error"] < 0.2


def test_passing_through_instead_of_bouncing_fails_direction():
    a, b = ObjectSpec("ball", "red", 5, "colliding"), ObjectSpec("square", "red", 5, "colliding")
    spec = ClipSpec("on black", (a, b), (2.0, 2.0), ((14.0, 30.0), (50.0, 30.0)))
    through = np.array([[[14.0 + 2 * t, 30.0], [50.0 - 2 * t, 30.0]] for t in range(world.NUM_FRAMES)])
    assert evaluation.evaluate_clip(world.make_clips([spec])[0].frames, spec)["direction"]
    assert not evaluation.evaluate_clip(world.render([spec], [through]).numpy()[0], spec)["direction"]


def test_direction_fault_says_why_a_mover_fails(clips):
    spec = ClipSpec("on black", (ObjectSpec("ball", "white", 5, "moving right"),), (3.0,), ((12.0, 30.0),))
    (clip,) = world.make_clips([spec])
    (turned,) = world.make_clips([world.turned_round(dataclasses.replace(spec, starts=((52.0, 30.0),)))])
    halted = np.concatenate([clip.frames[:8], np.repeat(clip.frames[7:8], world.NUM_FRAMES - 8, axis=0)])
    assert evaluation.direction_fault(clip.frames, spec) is None
    assert evaluation.direction_fault(turned.frames, spec) == "wrong way"
    assert evaluation.direction_fault(np.repeat(clip.frames[:1], world.NUM_FRAMES, axis=0), spec) == "stalled"
    assert evaluation.direction_fault(halted, spec) == "path"  # the asked way for 8 frames, then it stops
    background = world.backgrounds(["on black"])[0].numpy().round().astype(np.uint8)
    assert evaluation.direction_fault(np.repeat(background[None], world.NUM_FRAMES, axis=0), spec) == "no object"
    assert all(evaluation.direction_fault(c.frames, c.spec) is None for c in clips[:40])  # falls, collisions too


def test_a_prompts_checks_read_a_clip_as_its_truth_does(clips):
    for clip in clips[:40]:  # moves, falls and collisions
        looks = [(o.colour, o.shape) for o in clip.spec.objects]
        truth = evaluation.evaluate_clip(clip.frames, clip.spec)
        checks = evaluation.prompt_checks(clip.frames, looks, clip.spec.motion, clip.spec.scene)
        assert checks == {name: truth[name] for name in checks} == dict.fromkeys(checks, True)
    spec = clips[0].spec
    looks = [("white" if o.colour != "white" else "red", "square" if o.shape == "ball" else "ball")
             for o in spec.objects]
    assert not evaluation.prompt_checks(clips[0].frames, looks, spec.motion, spec.scene)["shape"]  # not as named
    unsaid = [(None, None)] * len(spec.objects)  # a prompt that names no colour nor shape: any object will do
    assert all(evaluation.prompt_checks(clips[0].frames, unsaid, spec.motion, spec.scene).values())


def test_ceiling_on_simulator_clips(clips):
    summary = summary_of(clips, [c.frames for c in clips])
    log.info("ceiling on %d simulator clips: %s", N, summary)
    assert all(summary[m] >= 0.95 for m in METRICS), summary
    assert summary["velocity_error"] < 0.1


def test_ceiling_after_h264_without_truth_centres(clips, h264):
    summary = summary_of(clips, h264, with_truth=False)  # as for clips generated from a caption alone
    log.info("ceiling on %d H.264 clips: %s", N, summary)
    assert all(summary[m] >= 0.9 for m in METRICS), summary


def test_noise_and_blank_frames_fail(clips):
    rng = np.random.default_rng(0)
    for clip in clips[:10]:
        noise = rng.integers(0, 256, clip.frames.shape, dtype=np.uint8)
        background = world.backgrounds([clip.spec.scene])[0].numpy().round().astype(np.uint8)
        blank = np.repeat(background[None], world.NUM_FRAMES, axis=0)
        for frames in (noise, blank):
            result = evaluation.evaluate_clip(frames, clip.spec, clip.centres)
            assert not result["count"] and not result["colour"] and not result["permanence"]


def test_another_colour_fails_colour(clips):
    for clip in clips[:30]:
        unused = [c for c in world.COLOURS if c not in {o.colour for o in clip.spec.objects}]
        recoloured = (dataclasses.replace(clip.spec.objects[0], colour=unused[0]), *clip.spec.objects[1:])
        other = world.make_clips([dataclasses.replace(clip.spec, objects=recoloured)])[0]
        assert not evaluation.evaluate_clip(other.frames, clip.spec)["colour"]


def test_shuffled_time_fails_direction_or_gravity(clips):
    rng = np.random.default_rng(0)
    single = [c for c in clips if len(c.spec.objects) == 1]
    failed = [
        not (r["direction"] and r["gravity"] is not False)
        for r in (evaluation.evaluate_clip(c.frames[rng.permutation(world.NUM_FRAMES)], c.spec) for c in single)
    ]
    assert np.mean(failed) >= 0.8


def test_velocity_error_zero_on_truth_large_reversed(clips):
    movers = moving_clips(clips)
    assert len(movers) >= 20
    for clip in movers:
        assert evaluation.evaluate_clip(clip.frames, clip.spec, clip.centres)["velocity_error"] < 0.3
        assert evaluation.evaluate_clip(clip.frames[::-1], clip.spec, clip.centres)["velocity_error"] > 1.0
    falling = [c for c in clips if c.spec.objects[0].motion == "falling"]
    assert all(evaluation.evaluate_clip(c.frames[::-1], c.spec, c.centres)["velocity_error"] > 1.0 for c in falling)


def test_seam_velocity(clips):
    movers = moving_clips(clips)[:10]
    assert all(evaluation.seam_velocity_ok(c.frames, seam=8) for c in movers)
    for clip in movers:
        jumped = np.concatenate([clip.frames[:8], clip.frames[4:12]])  # back to frame 4 at the seam
        assert evaluation.seam_velocity_ok(jumped, seam=8) is False
        background = world.backgrounds([clip.spec.scene])[0].numpy().round().astype(np.uint8)
        lost = np.concatenate([clip.frames[:8], np.repeat(background[None], 8, axis=0)])
        assert evaluation.seam_velocity_ok(lost, seam=8, scene=clip.spec.scene) is False  # gone after the seam
    assert evaluation.guess_scene(clips[0].frames) == clips[0].spec.scene


def test_summarize_leaves_out_none():
    results = [
        {"direction": True, "gravity": None, "velocity_error": 0.5},
        {"direction": False, "gravity": True, "velocity_error": None},
    ]
    assert evaluation.summarize(results) == {"direction": 0.5, "gravity": 1.0, "velocity_error": 0.5}

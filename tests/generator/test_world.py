"""The synthetic world follows docs/world.md: sizes, colours, physics, captions and determinism."""

import json

import numpy as np
import pytest

from generator import world
from generator.world import ClipSpec, ObjectSpec


def one(motion, start=(32.0, 32.0), speed=2.0, shape="ball", colour="red", radius=5, scene="on black"):
    return ClipSpec(scene, (ObjectSpec(shape, colour, radius, motion),), (speed,), (start,))


def test_clip_format_and_caption():
    (clip,) = world.sample_clips(seed=3, start=0, count=1)
    assert clip.frames.shape == (16, 64, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.caption.startswith("a ") and clip.caption.endswith(tuple(world.SCENES))
    assert clip.centres.shape[:1] == (16,)


def test_deterministic_for_a_seed_and_independent_of_batching():
    a = world.sample_clips(seed=5, start=0, count=6)
    again = world.sample_clips(seed=5, start=0, count=6)
    b = world.sample_clips(seed=5, start=4, count=2)
    assert all(np.array_equal(x.frames, y.frames) and x.caption == y.caption for x, y in zip(a, again, strict=True))
    assert all(np.array_equal(x.frames, y.frames) and x.caption == y.caption for x, y in zip(a[4:], b, strict=True))


def test_another_seed_gives_other_clips():
    a = world.sample_clips(seed=5, start=0, count=6)
    other = world.sample_clips(seed=6, start=0, count=6)
    assert not any(np.array_equal(x.frames, y.frames) for x, y in zip(a, other, strict=True))


def test_backgrounds_and_colours_exact():
    clip = world.make_clips([one("moving right", scene="at sunset", colour="blue")])[0]
    frame = clip.frames[0].astype(int)
    assert frame[0, 0].tolist() == [255, 150, 70] and frame[63, 0].tolist() == [120, 50, 110]
    assert frame[32, 32].tolist() == list(world.COLOURS["blue"])  # object centre
    forest = world.make_clips([one("falling", scene="in a forest", start=(10, 10))])[0]
    assert forest.frames[0, 63, 63].tolist() == [25, 80, 40]


def test_constant_speed_and_reflection_off_edges():
    centres = world.simulate(one("moving right", start=(50.0, 20.0), speed=3.0, radius=5))
    xs = centres[:, 0, 0]
    assert xs[1] - xs[0] == pytest.approx(3.0)
    assert xs.max() <= 64 - 5 and np.diff(xs)[-1] == pytest.approx(-3.0)  # came back off the right edge
    assert np.allclose(centres[:, 0, 1], 20.0)


def test_turned_round_moves_the_same_object_from_the_same_start_the_other_way():
    spec = one("moving quickly left", start=(40.0, 20.0), speed=3.5, radius=5)
    turned = world.turned_round(spec)
    assert turned.objects[0].motion == "moving quickly right" and turned.starts == spec.starts
    assert (turned.objects[0].colour, turned.objects[0].shape, turned.speeds) == (spec.objects[0].colour,
                                                                                 spec.objects[0].shape, spec.speeds)
    xs, turned_xs = world.simulate(spec)[:5, 0, 0], world.simulate(turned)[:5, 0, 0]
    assert np.allclose(xs - 40.0, -(turned_xs - 40.0))  # mirror paths until a wall
    specs = [world.sample_spec(np.random.default_rng(i)) for i in range(200)]
    assert all(world.turned_round(s) is None for s in specs if s.motion in ("falling", "colliding"))


def test_started_upstream_crosses_the_frame_without_turning_when_its_path_fits():
    rng = np.random.default_rng(0)
    for direction, (dx, dy) in world.DIRECTIONS.items():
        axis, sign = (0, dx) if dx else (1, dy)
        for _ in range(20):
            spec = one(f"moving {direction}", start=(32.0, 20.0), speed=float(rng.uniform(1.5, 3.0)), radius=5)
            moved = world.started_upstream(spec, rng)
            assert moved.objects == spec.objects and moved.speeds == spec.speeds and moved.scene == spec.scene
            assert moved.starts[0][1 - axis] == spec.starts[0][1 - axis]  # only the start along the motion moves
            steps = np.diff(world.simulate(moved)[:, 0, axis])
            assert np.allclose(steps, sign * spec.speeds[0])  # never turns at an edge
    fast = world.simulate(world.started_upstream(one("moving quickly left", start=(10.0, 20.0), speed=4.5,
                                                     radius=5), rng))[:, 0, 0]
    assert fast[0] == 59.0 and np.argmax(np.diff(fast) > 0) >= 11  # longer than the frame: from the far edge
    specs = [world.sample_spec(np.random.default_rng(i)) for i in range(200)]
    assert all(world.started_upstream(s, rng) == s for s in specs if s.motion in ("falling", "colliding"))


def test_gravity_and_bounce_keeps_80_percent():
    centres = world.simulate(one("falling", start=(30.0, 10.0), speed=0.0, radius=5), num_frames=40)
    ys = centres[:, 0, 1]
    vy = np.diff(ys)
    assert vy[0] == pytest.approx(0.5) and vy[1] == pytest.approx(1.0)  # v += 0.5 per frame
    bounce = int(np.argmax(vy < 0))
    assert bounce > 0 and ys.max() <= 64 - 5 + 1e-9
    drop = 59 - 10
    peak_after = ys[bounce:].min()
    assert 59 - peak_after == pytest.approx(0.64 * drop, rel=0.15)  # 80% speed: 64% of the height


def test_elastic_collision_exchanges_velocities():
    a = ObjectSpec("ball", "red", 5, "colliding")
    b = ObjectSpec("square", "blue", 5, "colliding")
    spec = ClipSpec("on black", (a, b), (2.0, 1.5), ((15.0, 30.0), (45.0, 30.0)))
    c = world.simulate(spec)
    va, vb = np.diff(c[:, 0, 0]), np.diff(c[:, 1, 0])
    assert va[0] == pytest.approx(2.0) and vb[0] == pytest.approx(-1.5)
    assert va[-1] == pytest.approx(-1.5) and vb[-1] == pytest.approx(2.0)  # exchanged
    assert np.all(c[:, 1, 0] - c[:, 0, 0] >= 10 - 1e-9)  # never overlap once resolved


def test_sampled_colliding_clips_meet_and_stay_in_frame():
    rng = np.random.default_rng(0)
    specs = [world.sample_spec(rng) for _ in range(300)]
    for spec in (s for s in specs if len(s.objects) == 2):
        c = world.simulate(spec)
        gap = c[:, 1, 0] - c[:, 0, 0]
        assert gap.min() <= sum(o.radius for o in spec.objects) + 4.5  # they touch within the clip
    for spec in specs:
        c = world.simulate(spec)
        radii = np.array([o.radius for o in spec.objects])
        assert np.all(c >= radii[None, :, None] - 1e-9) and np.all(c <= 64 - radii[None, :, None] + 1e-9)


def test_a_batch_simulates_each_clip_exactly_as_it_moves_alone():
    specs = [world.sample_spec(world.clip_rng(4, i)) for i in range(300)]
    specs += [world.started_upstream(s, np.random.default_rng(i)) for i, s in enumerate(specs[:50])]
    assert {len(s.objects) for s in specs} == {1, 2} and any(s.objects[0].motion == "falling" for s in specs)
    together = world.simulate_batch(specs, num_frames=40)  # long enough for every fall to bounce
    alone = [world.simulate_batch([s], num_frames=40)[0] for s in specs]
    assert all(np.array_equal(a, b) and a.shape == (40, len(s.objects), 2) for a, b, s in zip(together, alone, specs))
    ones = [s for s in specs if len(s.objects) == 1]  # a batch without pairs has one object slot
    assert all(np.array_equal(a, b) for a, b in zip(world.simulate_batch(ones), [world.simulate(s) for s in ones]))


def test_queries_match_truth():
    spec = one("moving quickly up", colour="white", scene="at sunset")
    assert world.full_query(spec).text == "a white ball moving quickly up at sunset"
    assert world.Query(objects=(("white", "ball"),)).matches(spec)
    assert world.Query(motion="moving up").matches(spec)  # no speed named: any speed
    assert not world.Query(motion="moving slowly up").matches(spec)
    assert world.Query(motion="moving left").matches(spec, visible_only=True)
    assert not world.Query(scene="on black").matches(spec)
    assert world.Query(motion="falling", scene="at sunset").text == "something falling at sunset"


def test_write_dataset(tmp_path):
    paths = world.write_dataset(tmp_path, n=3, seed=1)
    assert [p.name for p in paths] == ["00000.mp4", "00001.mp4", "00002.mp4"]
    truth = json.loads((tmp_path / "00001.json").read_text())
    assert truth["caption"] == world.sample_clips(1, 1, 1)[0].caption
    assert len(truth["centres"]) == 16 and truth["fps"] == 8

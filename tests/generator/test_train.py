"""Generator training: it learns, checkpoints, resumes and exports a loadable model (the command: test_cli_train)."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from generator import dit, world
from generator.autoencoder import AE_CONFIGS, FrameAutoencoder, save_autoencoder, to_video_tensor
from generator.pipeline import Generator
from generator.train import (
    GeneratorTrainConfig,
    Schedule,
    WorldStream,
    given_frames,
    keep_fused,
    names_its_direction,
    parameter_groups,
    plan_world_batch,
    train_generator,
    training_caption,
    world_batch,
)
from generator.world import sample_spec


def small_setup(tmp_path):
    """A test-size autoencoder on disk and a DiT config for it, the registry untouched."""
    ae = FrameAutoencoder(AE_CONFIGS["test"])
    save_autoencoder(tmp_path / "ae.safetensors", ae)
    config = dataclasses.replace(dit.DIT_CONFIGS["test"], latent_channels=ae.config.latent_channels,
                                 latent_size=8, frames=16)
    return tmp_path / "ae.safetensors", config


def test_training_lowers_the_loss_checkpoints_and_resumes(tmp_path):
    ae_path, config = small_setup(tmp_path)
    cfg = GeneratorTrainConfig(steps=40, batch=4, lr=3e-3, warmup=5, checkpoint_every=20)
    export = tmp_path / "gen.safetensors"
    first = train_generator(tmp_path / "run", dataclasses.replace(cfg, steps=20), autoencoder=ae_path, export=None,
                            dit_config=config)
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    assert state["step"] == 20
    result = train_generator(tmp_path / "run", cfg, autoencoder=ae_path, export=export, dit_config=config)
    assert torch.load(tmp_path / "run" / "state.pt", weights_only=True)["step"] == 40
    losses = json.loads((tmp_path / "run" / "result.json").read_text())
    assert losses["steps"] == 40 and result["final_loss"] < first["initial_loss"]
    gen = Generator.load(str(export), "cpu", autoencoder=ae_path)
    assert gen.generate("a red ball", steps=2).frames.shape == (16, 64, 64, 3)
    again = train_generator(tmp_path / "run2", dataclasses.replace(cfg, steps=2), autoencoder=ae_path, export=None,
                            init=export, dit_config=config)  # a new machine that has only the shipped weights
    assert again["steps_before"] == 40 and again["steps_total"] == 42


def test_a_generator_trains_on_the_latents_of_the_autoencoder_its_config_names_and_exports_beside_it(tmp_path,
                                                                                                  monkeypatch):
    from generator import checkpoint, train

    fine = FrameAutoencoder(dataclasses.replace(AE_CONFIGS["test"], widths=(8, 16)))  # 16 x 16 x 4 latents
    save_autoencoder(tmp_path / checkpoint.autoencoder_file("fine"), fine)
    monkeypatch.setattr(train, "WEIGHTS_DIR", tmp_path)  # where the built-in autoencoders are
    config = dataclasses.replace(dit.DIT_CONFIGS["test"], latent_channels=4, latent_size=16, patch=4, frames=16,
                                 autoencoder="fine")
    cfg = GeneratorTrainConfig(steps=2, batch=2)
    train_generator(tmp_path / "run", cfg, export=tmp_path / "generator-fine.safetensors", dit_config=config)
    gen = Generator.load(str(tmp_path / "generator-fine.safetensors"), "cpu")  # its autoencoder found beside it
    assert gen.autoencoder.config == fine.config and gen.generate("a red ball", steps=1).frames.shape == (16, 64, 64, 3)
    with pytest.raises(ValueError, match="the DiT models 4 x 8 x 8 latents"):  # the tiny layout on the fine latents
        train_generator(tmp_path / "run2", cfg, export=None, dit_config=dataclasses.replace(config, latent_size=8))


def test_runs_keep_a_token_table_over_the_words_they_know_and_shrink_a_full_one_they_start_from(tmp_path):
    from generator.train import training_vocabulary

    ae_path, config = small_setup(tmp_path)
    full = dit.STDiT(config)  # a row for every BPE id, as models before the known-words table
    torch.nn.init.normal_(full.text_encoder.token_embedding.weight)
    dit.save_checkpoint(tmp_path / "full.safetensors", full, config)
    cfg = GeneratorTrainConfig(steps=0, batch=2)
    train_generator(tmp_path / "run", cfg, autoencoder=ae_path, export=None, init=tmp_path / "full.safetensors",
                    dit_config=config)
    small, small_config, _ = dit.load_checkpoint(tmp_path / "run" / "ema.safetensors")
    assert config.vocabulary is None and small_config.vocabulary == training_vocabulary()
    assert len(training_vocabulary()) < 100 and set(dit.vocabulary_of(["a red ball moving left"])) < set(
        training_vocabulary())
    tokens = dit.tokenize(["a red ball moving left on black", "a dragon"], config.context_length)
    with torch.no_grad():
        assert torch.equal(small.text_encoder(tokens[:1])[0], full.eval().text_encoder(tokens[:1])[0])
    new = train_generator(tmp_path / "new", dataclasses.replace(cfg, steps=1), autoencoder=ae_path, export=None,
                          dit_config=config)
    assert new["steps"] == 1 and dit.load_checkpoint(tmp_path / "new" / "ema.safetensors")[1].vocabulary == \
        training_vocabulary()
    resumed = train_generator(tmp_path / "new", dataclasses.replace(cfg, steps=2), autoencoder=ae_path, export=None,
                              dit_config=config)
    assert resumed["steps"] == 2


def test_a_run_from_a_model_without_prompt_terms_adds_them_and_keeps_them_on_resume(tmp_path):
    ae_path, config = small_setup(tmp_path)
    dit.save_checkpoint(tmp_path / "plain.safetensors", dit.STDiT(config), config)
    cfg = GeneratorTrainConfig(steps=1, batch=2, frame_prompt=True, spacetime_prompt=True)
    train_generator(tmp_path / "run", cfg, autoencoder=ae_path, export=None, init=tmp_path / "plain.safetensors")
    model, trained_config, _ = dit.load_checkpoint(tmp_path / "run" / "ema.safetensors")
    assert trained_config.frame_prompt and model.frame_prompt is not None
    assert trained_config.spacetime_prompt and model.spacetime_prompt is not None
    resumed = train_generator(tmp_path / "run", dataclasses.replace(cfg, steps=2, frame_prompt=False,
                                                                    spacetime_prompt=False),
                              autoencoder=ae_path, export=None)
    resumed_model, resumed_config, _ = dit.load_checkpoint(tmp_path / "run" / "ema.safetensors")
    assert resumed["steps"] == 2 and resumed_config.frame_prompt and resumed_config.spacetime_prompt
    assert resumed_model.spacetime_prompt.out.weight.any()  # trained: no longer the silent start
    train_generator(tmp_path / "new", cfg, autoencoder=ae_path, export=None, dit_config=config)  # from scratch
    new_config = dit.load_checkpoint(tmp_path / "new" / "ema.safetensors")[1]
    assert new_config.frame_prompt and new_config.spacetime_prompt


def test_prompt_terms_learn_at_their_own_rate_and_a_run_resumes_only_with_the_groups_it_began_with(tmp_path):
    ae_path, config = small_setup(tmp_path)
    model = dit.with_prompt_terms(dit.STDiT(config), frame=True, spacetime=True)
    (whole,) = parameter_groups(model, GeneratorTrainConfig(lr=1e-4))
    assert len(whole["params"]) == len(list(model.parameters())) and whole["lr_scale"] == 1.0
    rest, terms = parameter_groups(model, GeneratorTrainConfig(lr=1e-4, prompt_terms_lr=1e-3))
    term_ids = {id(p) for part in (model.frame_prompt, model.spacetime_prompt) for p in part.parameters()}
    assert {id(p) for p in terms["params"]} == term_ids and not term_ids & {id(p) for p in rest["params"]}
    assert len(rest["params"]) + len(terms["params"]) == len(list(model.parameters()))
    assert terms["lr_scale"] == pytest.approx(10.0) and rest["lr_scale"] == 1.0
    assert len(parameter_groups(dit.STDiT(config), GeneratorTrainConfig(prompt_terms_lr=1e-3))) == 1  # no terms

    cfg = GeneratorTrainConfig(steps=1, batch=2, lr=1e-4, warmup=1, prompt_terms_lr=1e-3, spacetime_prompt=True)
    train_generator(tmp_path / "run", cfg, autoencoder=ae_path, export=None, dit_config=config)
    groups = torch.load(tmp_path / "run" / "state.pt", weights_only=True)["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-4, 1e-3])
    with pytest.raises(ValueError, match="resume it with the prompt terms' learning rate"):
        train_generator(tmp_path / "run", dataclasses.replace(cfg, steps=2, prompt_terms_lr=0.0),
                        autoencoder=ae_path, export=None, dit_config=config)
    assert train_generator(tmp_path / "run", dataclasses.replace(cfg, steps=2), autoencoder=ae_path, export=None,
                           dit_config=config)["steps"] == 2
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    for group in state["optimizer"]["param_groups"]:  # as runs saved before there were rates per group
        del group["lr_scale"]
    torch.save(state, tmp_path / "run" / "state.pt")
    assert train_generator(tmp_path / "run", dataclasses.replace(cfg, steps=3), autoencoder=ae_path, export=None,
                           dit_config=config)["steps"] == 3
    groups = torch.load(tmp_path / "run" / "state.pt", weights_only=True)["optimizer"]["param_groups"]
    assert [g["lr_scale"] for g in groups] == pytest.approx([1.0, 10.0])


def test_a_run_keeps_its_started_models_time_shift_unless_given_one(tmp_path):
    ae_path, config = small_setup(tmp_path)
    shifted = dataclasses.replace(config, time_shift=3.0)
    dit.save_checkpoint(tmp_path / "shifted.safetensors", dit.STDiT(shifted), shifted)
    cfg = GeneratorTrainConfig(steps=1, batch=2)
    train_generator(tmp_path / "kept", cfg, autoencoder=ae_path, export=None, init=tmp_path / "shifted.safetensors")
    assert dit.load_checkpoint(tmp_path / "kept" / "ema.safetensors")[1].time_shift == 3.0
    given = dataclasses.replace(cfg, time_shift=2.0)
    train_generator(tmp_path / "given", given, autoencoder=ae_path, export=None, init=tmp_path / "shifted.safetensors")
    assert dit.load_checkpoint(tmp_path / "given" / "ema.safetensors")[1].time_shift == 2.0
    train_generator(tmp_path / "new", cfg, autoencoder=ae_path, export=None, dit_config=config)  # from scratch
    assert dit.load_checkpoint(tmp_path / "new" / "ema.safetensors")[1].time_shift == 1.0


def test_world_batches_bring_the_counterfactuals_of_clips_whose_caption_names_a_direction():
    batch = world_batch(5, 24, "cpu")
    specs = [c.spec for c in world.sample_clips(5, 0, 24)]
    turned = [i for i, (spec, caption) in enumerate(zip(specs, batch.captions)) if names_its_direction(spec, caption)]
    assert turned and batch.turned.tolist() == turned and batch.counter.shape == (len(turned), 16, 3, 64, 64)
    for k, i in enumerate(turned):
        want = world.make_clips([world.turned_round(specs[i])])[0].frames
        assert torch.equal(batch.counter[k], to_video_tensor(want[None])[0])
    spec = next(s for s in (sample_spec(np.random.default_rng(i)) for i in range(100)) if world.turned_round(s))
    assert names_its_direction(spec, spec.caption)
    assert not names_its_direction(spec, spec.caption.replace(spec.objects[0].motion, ""))


def test_a_steps_caption_and_upstream_draws_are_independent_of_its_clips():
    from generator.train import CAPTIONS, UPSTREAM, step_stream

    clips = [world.clip_rng(5, i).random(8) for i in range(64)]  # what each clip's spec is drawn from
    for purpose in (CAPTIONS, UPSTREAM):
        draws = step_stream(5, purpose).random(8)
        assert not any(np.array_equal(draws, c) for c in clips)  # numpy's [5] is [5, 0]: clip 0's stream
    assert not np.array_equal(step_stream(5, CAPTIONS).random(8), step_stream(5, UPSTREAM).random(8))


def test_a_share_of_the_world_clips_moving_in_a_direction_start_upstream():
    from generator.train import world_specs

    drawn = [c.spec for c in world.sample_clips(5, 0, 64)]
    assert world_specs(5, 64, 0.0) == drawn  # the world's own stream
    moved = [a != b for a, b in zip(world_specs(5, 64, 1.0), drawn)]
    assert moved == [world.direction_of(s) is not None for s in drawn]
    assert 0 < sum(a != b for a, b in zip(world_specs(5, 64, 0.5), drawn)) < sum(moved)
    batch = world_batch(5, 8, "cpu", upstream=1.0)
    want = world.make_clips(world_specs(5, 8, 1.0))
    assert torch.equal(batch.video, to_video_tensor(np.stack([c.frames for c in want])))


def test_clips_with_given_frames_take_their_own_upstream_share():
    from generator.train import world_specs

    drawn = [c.spec for c in world.sample_clips(5, 0, 64)]
    continued = [i % 2 == 1 for i in range(64)]  # odd clips have given frames
    split = world_specs(5, 64, 1.0, 0.0, continued)
    movers = [world.direction_of(s) is not None for s in drawn]
    assert [a != b for a, b in zip(split, drawn)] == [m and not c for m, c in zip(movers, continued)]
    assert world_specs(5, 64, 1.0, None, continued) == world_specs(5, 64, 1.0)  # None: one share for all
    batch = world_batch(5, 8, "cpu", upstream=1.0, upstream_continued=0.0)  # told by its own frame mask
    told = given_frames(5, 8, 16).any(dim=1).tolist()
    assert torch.equal(batch.frame_mask, given_frames(5, 8, 16)) and 0 < sum(told) < 8
    want = world.make_clips(world_specs(5, 8, 1.0, 0.0, told))
    assert torch.equal(batch.video, to_video_tensor(np.stack([c.frames for c in want])))


def test_a_run_with_the_direction_contrast_trains_and_records_it(tmp_path):
    ae_path, config = small_setup(tmp_path)
    cfg = GeneratorTrainConfig(steps=3, batch=8, warmup=1, contrast=0.5, contrast_from=0.75, object_weight=1.5)
    result = train_generator(tmp_path / "run", cfg, autoencoder=ae_path, export=tmp_path / "g.safetensors",
                             dit_config=config)
    assert result["steps"] == 3 and result["config"]["contrast"] == 0.5 and np.isfinite(result["final_loss"])
    assert result["config"]["contrast_from"] == 0.75


def test_object_weights_mark_the_latent_cells_an_object_covers():
    from generator.train import object_weights

    video = -torch.ones(1, 2, 3, 64, 64)  # black frames in [-1, 1]
    video[0, 0, :, 10:14, 20:24] = 1.0  # a white 4 px square in frame 0 only: latent cell (1, 2)
    weights = object_weights(video, 8, 4.0, threshold=0.1)
    assert weights.shape == (1, 2, 1, 8, 8)
    expected = torch.ones(1, 2, 1, 8, 8)
    expected[0, 0, 0, 1, 2] = 5.0
    assert torch.equal(weights, expected)


def test_a_run_trains_on_the_frame_masks_and_tokens_its_world_batches_were_planned_with(tmp_path, monkeypatch):
    import generator.train as train

    planned, used = [], []
    plan, loss = train.plan_world_batch, train.training_loss

    def recorded_plan(*args, **kwargs):
        planned.append(plan(*args, **kwargs))
        return planned[-1]

    def recorded_loss(model, latents, tokens, frame_mask, *args, **kwargs):
        used.append((tokens, frame_mask))
        return loss(model, latents, tokens, frame_mask, *args, **kwargs)

    monkeypatch.setattr(train, "plan_world_batch", recorded_plan)
    monkeypatch.setattr(train, "training_loss", recorded_loss)
    ae_path, config = small_setup(tmp_path)
    cfg = GeneratorTrainConfig(steps=3, batch=8, warmup=1, upstream=1.0, upstream_continued=0.0)
    result = train_generator(tmp_path / "run", cfg, autoencoder=ae_path, export=None, dit_config=config)
    assert result["config"]["upstream_continued"] == 0.0 and len(planned) == len(used) == 3
    for p, (tokens, mask) in zip(planned, used):
        assert np.array_equal(p.frame_mask, mask.numpy()) and np.array_equal(p.tokens, tokens.numpy())
    assert len({p.captions[0] for p in planned}) > 1  # a fresh batch each step


def _plan(seed: int):  # module level: worker processes import it by name
    return plan_world_batch(seed, 4, upstream=0.5)


def _same_plans(a, b) -> bool:
    arrays = lambda p: [p.frame_mask, p.tokens, p.turned, *vars(p.drawing).values()]  # noqa: E731
    return a.captions == b.captions and all(np.array_equal(x, y) for x, y in zip(arrays(a), arrays(b)))


def test_world_batches_planned_in_worker_processes_are_those_planned_in_the_run():
    here, workers = WorldStream(_plan, first=7), WorldStream(_plan, first=7, workers=2)
    try:
        plans = [(here.next(), workers.next()) for _ in range(3)]
    finally:
        workers.close()
    assert all(_same_plans(a, b) for a, b in plans)
    assert not _same_plans(plans[0][0], plans[1][0])  # consecutive seeds: fresh clips
    batch = plans[0][1].batch("cpu")
    assert torch.equal(batch.video, world_batch(7, 4, "cpu", upstream=0.5).video)


def test_the_world_stream_keeps_at_most_ahead_plans_waiting():
    stream = WorldStream(_plan, first=0, workers=1, ahead=2)
    try:
        for taken in range(1, 5):
            stream.next()
            assert len(stream.waiting) <= 2  # without the bound, a slow step lets plans pile up in memory
            assert stream.seed == taken
    finally:
        stream.close()


def test_a_world_batch_is_painted_on_the_training_device():
    batch = plan_world_batch(3, 8).batch("meta")  # no data, but a device of its own: nothing comes back to the CPU
    assert {t.device.type for t in (batch.video, batch.tokens, batch.frame_mask)} == {"meta"}
    assert batch.counter is None or batch.counter.device.type == "meta"


def test_a_resumed_run_draws_the_batches_an_unbroken_run_draws(tmp_path, monkeypatch):
    import generator.train as train
    from generator.world import write_dataset

    seeds, plan, folder_batch = [], train.plan_world_batch, train.FolderClips.batch
    monkeypatch.setattr(train, "plan_world_batch", lambda seed, *a, **k: seeds.append(("world", seed)) or
                        plan(seed, *a, **k))
    monkeypatch.setattr(train.FolderClips, "batch", lambda self, seed, *a, **k: seeds.append(("folder", seed)) or
                        folder_batch(self, seed, *a, **k))
    ae_path, config = small_setup(tmp_path)
    write_dataset(tmp_path / "clips", 2, seed=8)
    runs = {}
    for data in (None, tmp_path / "clips"):
        for name, steps in (("unbroken", [4]), ("resumed", [2, 4])):
            seeds.clear()
            for total in steps:
                cfg = GeneratorTrainConfig(steps=total, batch=2, checkpoint_every=2)
                train_generator(tmp_path / f"{name}-{data is None}", cfg, autoencoder=ae_path, export=None,
                                dit_config=config, data=data)
            runs[name, data] = list(seeds)
        assert runs["resumed", data] == runs["unbroken", data] and len(set(runs["unbroken", data])) == 4


def test_a_resumed_optimizer_state_keeps_the_fused_update():
    weight = torch.nn.Parameter(torch.ones(3))
    unfused = torch.optim.AdamW([weight], lr=0.1)  # as runs were saved before the updates were fused
    weight.sum().backward()
    unfused.step()
    optimizer = torch.optim.AdamW([weight], lr=0.1, fused=True)
    optimizer.load_state_dict(unfused.state_dict())
    assert not optimizer.param_groups[0]["fused"]  # load_state_dict takes the saved options
    keep_fused(optimizer)
    assert optimizer.param_groups[0]["fused"] and optimizer.state[weight]["step"].dtype == torch.float32
    optimizer.step()
    assert float(optimizer.state[weight]["step"]) == 2


def test_a_timed_run_saves_by_the_clock_not_every_hundred_steps():
    schedule = Schedule(GeneratorTrainConfig(minutes=10, save_every_minutes=2, checkpoint_every=100))
    assert not schedule.save_due(100, seconds=30, last_save_s=0)  # 100 steps are seconds on an accelerator
    assert schedule.save_due(150, seconds=121, last_save_s=0)
    assert Schedule(GeneratorTrainConfig(steps=500, checkpoint_every=100)).save_due(100, 30, 0)  # a step count


def test_training_reads_a_folder_of_captioned_videos(tmp_path):
    from generator.train import FolderClips
    from generator.world import write_dataset

    ae_path, config = small_setup(tmp_path)
    write_dataset(tmp_path / "clips", 3, seed=8)  # NNNNN.mp4 with NNNNN.json {"caption": ...}
    (tmp_path / "clips" / "00002.json").unlink()
    (tmp_path / "clips" / "00002.txt").write_text("a red ball moving right past a lighthouse\n")
    data = FolderClips(tmp_path / "clips")
    assert len(data.clips) == 3 and data.clips[2][1] == "a red ball moving right past a lighthouse"
    batch = data.batch(0, 4, "cpu", context_length=8)
    assert batch.video.shape == (4, 16, 3, 64, 64) and -1 <= batch.video.min() and batch.video.max() <= 1
    assert len(batch.captions) == 4 and batch.counter is None  # footage has no counterfactuals
    assert batch.tokens.shape == (4, 8) and torch.equal(batch.frame_mask, given_frames(0, 4, 16))
    cfg = GeneratorTrainConfig(steps=3, batch=2, checkpoint_every=3)
    result = train_generator(tmp_path / "run", cfg, autoencoder=ae_path, export=None, data=tmp_path / "clips",
                             dit_config=config)
    assert result["data"] == str(tmp_path / "clips") and result["final_loss"] > 0
    vocabulary = dit.load_checkpoint(tmp_path / "run" / "ema.safetensors")[1].vocabulary
    assert set(dit.vocabulary_of(["lighthouse past"])) < set(vocabulary)  # the captions' own words get rows
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no captioned videos"):
        FolderClips(tmp_path / "empty")


def test_training_captions_vary_but_stay_in_the_world_vocabulary():
    import numpy as np

    from generator.prompt import parse_prompt

    rng = np.random.default_rng(0)
    specs = [sample_spec(rng) for _ in range(200)]
    captions = [training_caption(s, rng) for s in specs]
    assert sum(c == s.caption for c, s in zip(captions, specs)) > 80  # canonical most of the time
    assert len(set(captions)) > 150
    assert all(parse_prompt(c).understood for c in captions)


class FakeClock:
    """A clock that moves one second a reading; it stands for a kill after `kill_after` readings."""

    def __init__(self, kill_after: int | None = None):
        self.now, self.kill_after = 0.0, kill_after

    def __call__(self) -> float:
        self.now += 1.0
        if self.kill_after is not None and self.now > self.kill_after:
            raise KeyboardInterrupt
        return self.now


def test_learning_rate_warms_up_then_falls_to_a_tenth_over_the_time_budget():
    from generator.train import lr_over_time

    assert lr_over_time(0, 0.0, 600, 1e-3, warmup=10) == pytest.approx(1e-4)
    assert lr_over_time(9, 1.0, 600, 1e-3, warmup=10) == pytest.approx(1e-3)
    assert lr_over_time(10, 0.0, 600, 1e-3, warmup=10) == pytest.approx(1e-3)
    assert lr_over_time(50, 300, 600, 1e-3, warmup=10) == pytest.approx(0.55e-3)
    assert lr_over_time(90, 600, 600, 1e-3, warmup=10) == pytest.approx(1e-4)
    assert lr_over_time(99, 900, 600, 1e-3, warmup=10) == pytest.approx(1e-4)


def test_a_timed_run_exports_as_it_goes_resumes_and_ends_within_its_budget(tmp_path):
    ae_path, config = small_setup(tmp_path)
    cfg = GeneratorTrainConfig(steps=1, batch=2, lr=3e-3, warmup=2, checkpoint_every=1000, minutes=0.25,
                               save_every_minutes=0.05, time_shift=3.0)  # 15 s, saves every 3 s
    export, run = tmp_path / "gen.safetensors", tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):  # killed part-way
        train_generator(run, cfg, autoencoder=ae_path, export=export, dit_config=config,
                        clock=FakeClock(kill_after=9))
    killed_at = torch.load(run / "state.pt", weights_only=True)["step"]
    _, exported_config, extra = dit.load_checkpoint(export)
    assert killed_at >= 2 and extra["train"]["final"] is False and extra["train"]["steps"] == killed_at
    assert exported_config.time_shift == 3.0
    result = train_generator(run, cfg, autoencoder=ae_path, export=export, dit_config=config, clock=FakeClock())
    state = torch.load(run / "state.pt", weights_only=True)
    assert result["steps"] == state["step"] > killed_at > cfg.steps  # the budget, not the step count, ended it
    assert result["seconds"] <= 15 and state["elapsed"] == result["seconds"]
    _, _, extra = dit.load_checkpoint(export)
    assert extra["train"]["final"] is True and extra["train"]["steps"] == result["steps"]
    assert dit.DIT_CONFIGS["test"].time_shift == 1.0  # the registry is untouched


ACCELERATOR_MACHINE = '''
import sys
MISSING = {"av", "pymilvus", "milvus_lite", "pydantic", "fastapi", "starlette", "uvicorn", "decord", "streamlit"}
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in MISSING:
            raise ImportError(f"No module named {name!r}")
sys.meta_path.insert(0, Missing())
'''


def test_the_training_command_runs_where_only_pytorch_and_the_carried_open_clip_are_installed(tmp_path):
    """An accelerator machine has PyTorch but no PyAV, pymilvus or pydantic (README, "Training on an
    accelerator"): `reelbase train generator` needs none of them, and still reports a usage error as one."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(ACCELERATOR_MACHINE)
    root = Path(__file__).resolve().parents[2]
    env = os.environ | {"PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{root}"}
    train = [sys.executable, "-m", "search.cli", "train", "generator", "--device", "cpu", "--no-export"]
    run = subprocess.run(train + ["--steps", "1", "--batch", "1", "--run-dir", str(tmp_path / "run")],
                         env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["steps"] == 1
    bad = subprocess.run(train + ["--steps", "1", "--lr", "-1", "--run-dir", str(tmp_path / "bad")],
                         env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("reelbase: error: ") and "Traceback" not in bad.stderr

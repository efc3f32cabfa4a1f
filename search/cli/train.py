"""`reelbase train`: train a built-in model (the CLIP encoder, the autoencoder or the generator) and export it;
or the temporal model over the configured CLIP model, on the world or on a folder of captioned footage."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def cmd_train(args) -> int:
    import dataclasses
    import shutil

    import torch

    from common.device import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    temporal = args.what == "clip" and (args.temporal or args.data)
    run_dir = args.run_dir or default_run_dir(args.what, args.config, temporal)
    overrides = given(args, "steps", "batch")
    if temporal:
        result = train_temporal(args, run_dir, device, overrides)
    elif args.what == "clip":
        from indexer.train_clip import TrainConfig, train

        overrides.pop("batch", None)
        result = train(run_dir, dataclasses.replace(TrainConfig(), **overrides), device, export=not args.no_export)
    elif args.what == "autoencoder":
        from generator.autoencoder import AE_CONFIGS, train_autoencoder
        from generator.checkpoint import WEIGHTS_DIR, autoencoder_file

        overrides |= given(args, "lr", "object_weight", "init", "refine_blocks")
        config = AE_CONFIGS[known_config(args.config, AE_CONFIGS, "autoencoder")]
        if args.init and not args.no_export:
            same_latents(args.init, config, args.config)
        result = train_autoencoder(run_dir, device=device, decoder_only=args.decoder_only, config=config, **overrides)
        if not args.no_export:
            shutil.copyfile(f"{run_dir}/autoencoder.safetensors", WEIGHTS_DIR / autoencoder_file(args.config))
    else:
        from generator.checkpoint import builtin_path
        from generator.dit import DIT_CONFIGS
        from generator.train import GeneratorTrainConfig, train_generator

        known_config(args.config, DIT_CONFIGS, "generator")

        if args.minutes is not None and args.steps is not None:
            raise SystemExit("reelbase train generator: give --steps or --minutes, not both")
        overrides |= given(args, "lr", "object_weight", "minutes", "time_shift", "contrast", "contrast_from",
                           "upstream", "upstream_continued", "frame_prompt", "spacetime_prompt", "prompt_terms_lr",
                           "data_workers")
        cfg = dataclasses.replace(GeneratorTrainConfig(config=args.config), **overrides)
        export = None if args.no_export else builtin_path(args.config)
        result = train_generator(run_dir, cfg, device, export=export, init=args.init, data=args.data)
    print(json.dumps(result, indent=2))
    return 0


def default_run_dir(what: str, config: str, temporal: bool) -> str:
    """runs/WHAT (runs/temporal for the temporal model), and runs/WHAT-CONFIG for a config other than tiny, so
    a run of one config never resumes another's."""
    if temporal:
        return "runs/temporal"
    return f"runs/{what}" if what == "clip" or config == "tiny" else f"runs/{what}-{config}"


def known_config(name: str, configs: dict, what: str) -> str:
    """`name` when `configs` has it, else a usage error naming the ones it has (but the unit tests' own)."""
    if name not in configs:
        choices = ", ".join(c for c in configs if c != "test")
        raise SystemExit(f"reelbase train {what}: no config '{name}'; give one of {choices}")
    return name


def same_latents(init: str, config, name: str) -> None:
    """A usage error unless the --init autoencoder makes the latents of the config it will be exported as
    (autoencoder-NAME.safetensors), so an export never puts one layout where generators expect another."""
    from generator.autoencoder import config_from
    from generator.checkpoint import read_config

    theirs = config_from(read_config(init))
    if (theirs.latent_channels, theirs.downscale) != (config.latent_channels, config.downscale):
        raise SystemExit(f"reelbase train autoencoder: --init {init} makes {theirs.latent_channels}-channel latents "
                         f"of {theirs.downscale} px cells, not those of the config '{name}' it would be exported as; "
                         f"give its --config")


def given(args, *names: str) -> dict:
    """The options among `names` that the command line gave (not None), by name: a run's overrides."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def train_temporal(args, run_dir: str, device: str, overrides: dict) -> dict:
    """Train the temporal model over the configured CLIP model and write it where search finds it: beside the
    built-in CLIP model's weights for the world, else in the data folder's models/ (or --out)."""
    import dataclasses

    from indexer.encoder import ClipEncoder
    from indexer.identity import BUILTIN, WEIGHTS_DIR
    from indexer.temporal_models import MODELS_FOLDER, SUFFIX
    from indexer.train_temporal import TemporalTrainConfig, train
    from search.settings import Settings

    settings = Settings()
    encoder = ClipEncoder.load(settings.clip_model, device)
    if args.out:
        out = Path(args.out)
    elif not args.data and settings.clip_model in BUILTIN.available():
        out = WEIGHTS_DIR / f"{settings.clip_model}{SUFFIX}"
    else:
        out = settings.data_dir / MODELS_FOLDER / f"{encoder.name.replace('@', '-').replace('/', '_')}{SUFFIX}"
    cfg = dataclasses.replace(TemporalTrainConfig(), **overrides)
    command = "reelbase " + " ".join(sys.argv[1:])
    return train(run_dir, encoder, cfg, data=args.data, export=None if args.no_export else out, command=command)

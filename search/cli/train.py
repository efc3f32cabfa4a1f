"""`reelbase train`: train a built-in model (the CLIP encoder, the autoencoder or the generator) and export it."""

from __future__ import annotations

import json


def cmd_train(args) -> int:
    import dataclasses
    import shutil

    import torch

    from common.device import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    run_dir = args.run_dir or f"runs/{args.what}"
    overrides = {k: v for k, v in (("steps", args.steps), ("batch", args.batch)) if v is not None}
    if args.what == "clip":
        from indexer.train_clip import TrainConfig, train

        overrides.pop("batch", None)
        result = train(run_dir, dataclasses.replace(TrainConfig(), **overrides), device, export=not args.no_export)
    elif args.what == "autoencoder":
        from generator.autoencoder import train_autoencoder
        from generator.checkpoint import AUTOENCODER, WEIGHTS_DIR

        result = train_autoencoder(run_dir, device=device, **overrides)
        if not args.no_export:
            shutil.copyfile(f"{run_dir}/autoencoder.safetensors", WEIGHTS_DIR / AUTOENCODER)
    else:
        from generator.checkpoint import builtin_path
        from generator.train import GeneratorTrainConfig, train_generator

        if args.minutes is not None and args.steps is not None:
            raise SystemExit("reelbase train generator: give --steps or --minutes, not both")
        overrides |= {k: v for k, v in (("lr", args.lr), ("object_weight", args.object_weight),
                                        ("minutes", args.minutes), ("time_shift", args.time_shift)) if v is not None}
        cfg = dataclasses.replace(GeneratorTrainConfig(config=args.config), **overrides)
        export = None if args.no_export else builtin_path(args.config)
        result = train_generator(run_dir, cfg, device, export=export, init=args.init, data=args.data)
    print(json.dumps(result, indent=2))
    return 0

"""Every `reelbase` command and its options; each command names the function that runs it."""

from __future__ import annotations

import argparse

from search.cli.demo import cmd_demo
from search.cli.generate import cmd_generate, cmd_world
from search.cli.library import cmd_ingest, cmd_optimize, cmd_stats
from search.cli.maintenance import cmd_reindex, cmd_repair
from search.cli.queries import cmd_dups, cmd_search, cmd_similar
from search.cli.servers import cmd_serve, cmd_ui
from search.cli.train import cmd_train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reelbase", description="The `reelbase` command line.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="generate clips and ingest world clips into a library, then search it")
    p.add_argument("--clips", type=int, default=24, help="world clips to ingest")
    p.add_argument("--generate", type=int, default=4, help="clips to generate")
    p.add_argument("--steps", type=int, default=20, help="sampling steps per generated clip")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("generate", help="write a clip from a prompt (mp4 and a JSON record beside it)")
    p.add_argument("prompt")
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale (default: the model's own for the mode)")
    p.add_argument("--candidates", type=int, default=None,
                   help="starting noises searched for the motion the prompt asks for (in more rounds of as many "
                        "where the model's config says and none shows all it asks), or clips finished to keep "
                        "the given frames' motion across the seam (default: the model's own)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--model", default="reelbase-tiny", help="built-in name or a .safetensors checkpoint")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="clip.mp4")
    p.add_argument("--library", action="store_true", help="save the clip into the library and index it (not --out)")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("world", help="write a data set of synthetic world clips")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_world)

    p = sub.add_parser("ingest", help="add video files or folders (recursively) to the library")
    p.add_argument("paths", nargs="+")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", help="find videos by text (or by an image, or generated clips by prompt)")
    p.add_argument("text", nargs="?", default="")
    p.add_argument("--image", help="search by this image file instead of text")
    p.add_argument("--prompts", action="store_true", help="search the prompts of generated clips")
    p.add_argument("--top-k", type=_int_in(1, 1000), default=10)
    p.add_argument("--offset", type=_int_in(0, 1_000_000), default=0)
    p.add_argument("--source", choices=["generated", "ingested"])
    p.add_argument("--min-duration", type=float)
    p.add_argument("--max-duration", type=float)
    p.add_argument("--json", action="store_true", help="print the hits as JSON")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("similar", help="the videos nearest to a library video")
    p.add_argument("video_id")
    p.add_argument("--top-k", type=_int_in(1, 1000), default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("dups", help="near-duplicate videos: library-wide groups, or copies of one video or image")
    p.add_argument("video_id", nargs="?", help="only copies of this video")
    p.add_argument("--image", help="only videos holding a copy of this image")
    p.add_argument("--threshold", type=float, default=None, help="verified score for a duplicate (0..1)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dups)

    p = sub.add_parser("optimize", help="rebuild the search indexes over every frame (when `serve` is not running)")
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("repair", help="remove what interrupted work left (vectors or files without a video), "
                                      "report videos whose file is gone (while nothing else writes)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser("reindex", help="re-embed every library video with the configured CLIP model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("serve", help="run the HTTP API (it then owns the Milvus Lite file)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("ui", help="run the Streamlit UI (and the API, when none answers on this machine)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--api", default=None, help="the API's address (default REELBASE_API_URL or http://127.0.0.1:8000)")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("stats", help="what the library holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("train", help="train a built-in model (or the temporal model on your own footage)")
    p.add_argument("what", choices=["clip", "autoencoder", "generator"])
    p.add_argument("--steps", type=int, default=None, help="total steps (default: the model's own)")
    p.add_argument("--minutes", type=float, default=None,
                   help="generator: train for this long instead of a step count (learning rate over the time; "
                        "checkpoints and exports every 2 minutes and at the end; resumes from the run dir)")
    p.add_argument("--config", default="tiny",
                   help="generator: tiny, base, or fine (tiny's transformer on the fine autoencoder's 16 x 16 "
                        "latents); autoencoder: tiny (8 x 8 x 8 latents) or fine (16 x 16 x 4); exported as NAME's "
                        "files")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--run-dir", default=None,
                   help="checkpoints, default runs/WHAT (runs/WHAT-CONFIG for a config other than tiny); training "
                        "resumes from here")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--no-export", action="store_true", help="do not overwrite the shipped weights")
    p.add_argument("--lr", type=float, default=None,
                   help="generator, autoencoder: peak learning rate (default 6e-4 and 2e-3; lower it to go on from "
                        "trained weights)")
    p.add_argument("--object-weight", type=float, default=None,
                   help="generator: extra loss weight on the latent cells objects cover (default 0); autoencoder: on "
                        "object pixels (default 10)")
    p.add_argument("--time-shift", type=float, default=None,
                   help="generator: shift training times toward noise, t -> s t / (1 + (s - 1) t) (SD3); the model "
                        "keeps it and samples the same way (default: the --init or resumed model's, else 1: none)")
    p.add_argument("--contrast", type=float, default=None,
                   help="generator: weight of the direction contrast on world clips: each clip's prompt must explain "
                        "it better than the same clip moving the other way (default 0: off)")
    p.add_argument("--contrast-from", type=float, default=None,
                   help="generator: draw the direction contrast's times from [T, 1] only, near noise, where a "
                        "sampler sets the way a clip moves (default 0: all times)")
    p.add_argument("--upstream", type=float, default=None,
                   help="generator: share of world clips moving in a direction that start where they cross the frame "
                        "without turning at an edge, so a direction shows in where the object is first and last "
                        "(default 0)")
    p.add_argument("--upstream-continued", type=float, default=None,
                   help="generator: that share among the clips with given frames (continued, animated), which "
                        "must carry on what those frames show, reflections off the edges included (default: "
                        "--upstream's)")
    p.add_argument("--frame-prompt", action="store_true", default=None,
                   help="generator: let the prompt condition each frame by its place in the clip (a per-frame "
                        "term of the adaLN conditioning, zero at first), so a prompt can set how a place changes "
                        "over frames")
    p.add_argument("--spacetime-prompt", action="store_true", default=None,
                   help="generator: let the prompt add to each place in each frame before the blocks (an MLP of "
                        "prompt, frame and place, zero at first), so \"moving left\" can say \"on the right early, "
                        "on the left late\"")
    p.add_argument("--prompt-terms-lr", type=float, default=None,
                   help="generator: learning rate of the prompt terms (--frame-prompt, --spacetime-prompt), which "
                        "start at zero in a model from --init and have everything to learn (default: --lr)")
    p.add_argument("--data-workers", type=int, default=None,
                   help="generator: processes that simulate and caption world batches ahead of the training step "
                        "(default: on CUDA all the cores but two, at most 12; else 0, between steps)")
    p.add_argument("--init", default=None,
                   help="generator, autoencoder: start a new run from these weights (e.g. the shipped ones)")
    p.add_argument("--decoder-only", action="store_true",
                   help="autoencoder: train the decoder of the --init autoencoder alone; its encoder and latents stay "
                        "as they were, so the generator trained on them keeps working")
    p.add_argument("--refine-blocks", type=int, default=None,
                   help="autoencoder: residual blocks at full resolution at the end of the decoder, for sharper "
                        "edges; with --init they are added to its decoder, starting as no change (default 0)")
    p.add_argument("--data", default=None,
                   help="generator, clip: a folder of videos with captions (clip.json or clip.txt) instead of the "
                        "world; for clip, trains the temporal model over the configured CLIP model "
                        "(REELBASE_CLIP_MODEL) into <data dir>/models/, where search finds it")
    p.add_argument("--temporal", action="store_true",
                   help="clip: train the temporal model (motion search) over the configured CLIP model, not the "
                        "CLIP model itself")
    p.add_argument("--out", default=None, help="clip --temporal / --data: where to write the temporal model "
                                              "(a .temporal.safetensors path)")
    p.set_defaults(func=cmd_train)
    return parser


def _int_in(low: int, high: int):
    """An argparse type: an integer within low..high, else a usage error naming the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be within {low}..{high}, got {value}")
        return value

    return parse

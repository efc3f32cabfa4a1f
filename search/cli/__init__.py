"""The `reelbase` command line.

`main` parses the arguments (`parser.py`) and runs the command's function; the commands live
by what they work on: `library.py` (ingest, stats, optimize), `maintenance.py` (repair,
reindex), `queries.py` (search, similar, dups), `generate.py` (generate, world), `demo.py`,
`train.py`, and `servers.py` (serve, and `ui` with the API it starts). `output.py` holds the
progress bars and how results print. Heavy modules are imported inside the commands, so that
`reelbase --help` and a usage error answer at once.
"""

from __future__ import annotations

import logging
import sys

from search.cli.parser import build_parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("indexer").setLevel(logging.INFO)
    logging.getLogger("generator").setLevel(logging.INFO)
    logging.getLogger("search").setLevel(logging.INFO)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("interrupted: what was committed stays; run the same command again to finish", file=sys.stderr)
        return 130
    except Exception as exc:
        if not isinstance(exc, _user_errors()):
            raise
        print(f"reelbase: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: Exception) -> str:
    """A user error as one line; pydantic's validation errors (where pydantic was loaded) as 'field: what is
    wrong; ...'."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())
    return str(exc)


USER_ERRORS = {"common.weights": "UnknownModel", "indexer.milvus": "StoreError", "indexer.probe": "BadVideo",
               "search.library": "NotFound"}  # module: the error of it that is the user's to fix


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's to fix: shown as one line, not a traceback. Only the modules the command
    loaded are asked (one it never imported raised nothing), so a command that needs no store, such as
    training on a machine without pymilvus, reports its own error rather than a failed import."""
    loaded = tuple(getattr(sys.modules[module], name) for module, name in USER_ERRORS.items() if module in sys.modules)
    return loaded + (FileNotFoundError, PermissionError, ValueError)

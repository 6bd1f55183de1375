"""What every command-line entry point shares: one-line errors, non-zero exits."""

from __future__ import annotations

import os
import sys

from .errors import FollowerError

# the benchmark and study modules have no --debug of their own: this variable shows their tracebacks
DEBUG_ENV = "SCOREFOLLOW_DEBUG"


def run_main(func, args) -> int:
    """Run ``func(args)``; turn project errors into one line on stderr and exit code 2.

    Library errors that escape (a bug, or a case not yet wrapped) still become one
    line, with the hint to rerun with ``--debug`` for the traceback.
    """
    return _one_line(lambda: func(args), getattr(args, "debug", False), "rerun with --debug for details",
                     (FollowerError,))


def module_main(main, argv=None) -> int:
    """Run a ``python -m`` module's ``main(argv)`` as a command: project errors and missing or
    unreadable files become one line on stderr and exit 2, anything else one line and exit 3
    (``SCOREFOLLOW_DEBUG=1`` shows the traceback). Only for the ``__main__`` entry: code that calls
    ``main`` itself keeps its exceptions."""
    return _one_line(lambda: main(argv), bool(os.environ.get(DEBUG_ENV)), f"{DEBUG_ENV}=1 shows the traceback",
                     (FollowerError, OSError), audio_errors=True)


def _one_line(call, debug: bool, hint: str, expected: tuple, audio_errors: bool = False) -> int:
    """``call()``'s exit code; ``expected`` errors one line and 2, anything else one line and 3 (with
    ``hint``), unless ``debug``. ``audio_errors``: soundfile's error for a missing or unreadable
    recording counts as expected."""
    try:
        return int(call() or 0)
    except BrokenPipeError:  # output piped into head and the like
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the user gets one line, never a traceback
        if debug:
            raise
        if isinstance(e, expected):
            print(f"error: {e}", file=sys.stderr)
            return 2
        if audio_errors and type(e).__name__ == "LibsndfileError":
            print(f"error: {e}; give a readable audio file (wav, flac, ogg)", file=sys.stderr)
            return 2
        print(f"error: unexpected {type(e).__name__}: {e} ({hint})", file=sys.stderr)
        return 3


def build_parser(prog: str, description: str, command_modules):
    """An argparse parser whose subcommands come from modules exposing ``register(subparsers)``.

    The modules are passed in, already imported by the caller's own ``import`` lines, so
    a command module that fails to import stops the program loudly instead of vanishing
    from ``--help``.
    """
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in command_modules:
        module.register(sub)
    return parser


def main_for(prog: str, description: str, command_modules, argv=None) -> int:
    parser = build_parser(prog, description, command_modules)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    return run_main(args.func, args)

"""The `pairzoo` command: run a recipe; list, show, validate and package an output folder."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from pairzoo import __version__
from pairzoo.errors import PairzooError
from pairzoo.profiles import PROFILES, artifacts_dir
from pairzoo.recipe_run import parse_value, run_recipe
from pairzoo.record import manifest
from pairzoo.views.run_summary import summary


def _folder(args: argparse.Namespace) -> Path:
    return Path(args.dir) if args.dir else artifacts_dir(args.profile)


def _list(args: argparse.Namespace) -> int:
    from pairzoo.views import listing

    entries = manifest.load(_folder(args))
    chosen = listing.select(entries, args.recipe, args.relation)
    if args.format == "markdown":  # the pair table; models are looked up among all of them
        print(listing.markdown({**entries, "pairs": chosen["pairs"]}))
    else:
        print(listing.FORMATS[args.format](chosen))
    return 0


def _show(args: argparse.Namespace) -> int:
    entries = manifest.load(_folder(args))
    for kind in ("models", "pairs", "datasets", "metrics"):
        if args.id in entries[kind]:
            print(json.dumps(entries[kind][args.id], indent=2, sort_keys=True))
            return 0
    raise PairzooError(f"no model, pair, dataset or metric with id {args.id!r}")


def _validate(args: argparse.Namespace) -> int:
    from pairzoo.archive.validate import check

    target = _folder(args)
    if not target.exists():
        raise PairzooError(f"{target}: no such folder or archive")
    report = check(target)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for problem in report.problems:
        print(problem, file=sys.stderr)
    if report.problems:
        print(f"pairzoo: {len(report.problems)} problem(s) in {target}", file=sys.stderr)
        return 1
    print(f"{target}: OK ({report.summary()})")
    return 0


def _package(args: argparse.Namespace) -> int:
    from pairzoo.archive.pack import NotValid, package

    try:
        archive = package(_folder(args), Path(args.output))
    except NotValid as exc:
        print(f"pairzoo: {exc}", file=sys.stderr)
        return 1
    print(f"{archive}: written and validated ({archive.stat().st_size / 2**20:.1f} MiB)")
    return 0


def _values(text: str) -> tuple[str, list[object]]:
    name, sep, values = text.partition("=")
    if not sep or not name.isidentifier() or not values:
        raise PairzooError(f"parameter {text!r}: write NAME=V1,V2,... (e.g. qp=-20,-30)")
    return name, [parse_value(value) for value in values.split(",")]


def _evaluate(args: argparse.Namespace) -> int:
    from pairzoo.bench import summary
    from pairzoo.bench.harness import evaluate
    from pairzoo.bench.plugin import codec_name, load_codec
    from pairzoo.bench.testset import open as open_set

    parameters = dict(_values(text) for text in args.parameter)
    codec = load_codec(args.codec)
    target = _folder(args)
    if not target.exists():
        raise PairzooError(f"{target}: no such folder or archive")
    output = Path(args.output or f"evaluations/{codec_name(codec)}")
    with open_set(target) as test_set:
        evaluation = evaluate(
            codec,
            test_set,
            parameters,
            args.pairs,
            args.relation,
            output,
            args.workers,
            resume=not args.restart,
        )
        summary.write(evaluation, test_set, output)
    for row in evaluation.errors:
        print(f"error: {row['pair']} {row['params']}: {row['error']}", file=sys.stderr)
    print(evaluation.line())
    return 1 if evaluation.errors else 0


def _run(args: argparse.Namespace) -> int:
    from pairzoo import distributed

    parameters = {name: parse_value(value) for name, value in args.parameter}
    recipe, start = Path(args.recipe), time.perf_counter()
    namespace = run_recipe(recipe, parameters)
    if distributed.rank() == 0:  # under torchrun, the process that wrote the output
        print(summary(recipe.stem, namespace, time.perf_counter() - start), file=sys.stderr)
    return 0


def _list_options(command: argparse.ArgumentParser) -> None:
    """`list`'s output format and filters."""
    formats = command.add_mutually_exclusive_group()
    for name, text in (("json", "models and pairs as JSON"), ("csv", "models and pairs as CSV"),
                       ("markdown", "the pair table in Markdown")):  # fmt: skip
        formats.add_argument(
            f"--{name}", dest="format", action="store_const", const=name, help=text
        )
    command.set_defaults(format="text")
    command.add_argument("--recipe", help="only this recipe's models and pairs")
    command.add_argument("--relation", help="only pairs of this relation, and their models")


def _profile_option(command: argparse.ArgumentParser, default: str) -> None:
    """`--profile`, before the subcommand or after it (a subcommand's default keeps the top's)."""
    command.add_argument(
        "--profile", default=default, choices=PROFILES, help="default output folder: its profile"
    )


def parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    top = argparse.ArgumentParser(prog="pairzoo", description=__doc__)
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _profile_option(top, "ci")
    commands = top.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("list", _list, "list models and pairs"),
        ("show", _show, "print one entry as JSON"),
        ("validate", _validate, "check hashes, ONNX files, pair claims, compressed samples"),
        ("package", _package, "write one .zip with files, manifest, sums, description, cards"),
    ):
        sub = commands.add_parser(name, help=text)
        _profile_option(sub, argparse.SUPPRESS)
        if name == "show":
            sub.add_argument("id")
        sub.add_argument("dir", nargs="?", help="output folder (default: artifacts/<profile>)")
        if name == "package":
            sub.add_argument("-o", "--output", required=True, help="archive to write (.zip)")
        if name == "list":
            _list_options(sub)
        sub.set_defaults(func=func)
    run = commands.add_parser("run", help="run a recipe as a script (also under torchrun)")
    run.add_argument("recipe", help="the recipe's .py file, e.g. notebooks/retraining.py")
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a parameter (a Python literal, else text)",
    )
    run.set_defaults(func=_run)
    evaluate = commands.add_parser(
        "evaluate", help="score a codec on every pair: results.csv/json, summary, BD-rate"
    )
    evaluate.add_argument(
        "codec", help="module:object, path/to/file.py[:object], or a built-in codec's name"
    )
    evaluate.add_argument(
        "dir", nargs="?", help="test set: folder or .zip (default: artifacts/<profile>)"
    )
    evaluate.add_argument(
        "-p", "--parameter", action="append", default=[], metavar="NAME=V1,V2",
        help="a codec parameter and its values (Python literals); every combination is run",
    )  # fmt: skip
    _profile_option(evaluate, argparse.SUPPRESS)
    evaluate.add_argument("--pairs", help="only pairs whose id matches this glob")
    evaluate.add_argument("--relation", help="only pairs of this relation")
    evaluate.add_argument("-o", "--output", help="results folder (default: evaluations/<codec>)")
    evaluate.add_argument("--workers", type=int, default=1, help="processes scoring pairs")
    evaluate.add_argument(
        "--restart", action="store_true", help="replace earlier results in -o instead of resuming"
    )
    evaluate.set_defaults(func=_evaluate)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the command: exit 0 when fine, 1 when validate finds problems, 2 for bad usage or input.

    Bad input prints one line; an interrupted run prints one line too (and exits 130). Output into
    a pipe whose reader has gone (`pairzoo list | head -3`) ends quietly with 141, as coreutils do.
    """
    args = parser().parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()  # a reader that has gone shows here, not at the interpreter's exit
        return status
    except BrokenPipeError:  # nothing more can be written; the exit's own flush goes to devnull
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except PairzooError as exc:
        print(f"pairzoo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pairzoo: interrupted; earlier outputs are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

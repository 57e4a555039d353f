"""The `gristmill` command."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from gristmill import __version__
from gristmill.pipelines.config import ConfigError, load
from gristmill.transforms.sources import KINDS


def _job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "job", nargs="?", help="job file (YAML); optional when --source and --output are given"
    )
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="KIND=PATH",
        help=f"add an input (kinds: {', '.join(KINDS)}); repeatable",
    )
    parser.add_argument("--output", help="release directory (overrides `output`)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished release at the output (the old one stays until the new is complete)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. quality.enabled=false; repeatable",
    )
    parser.add_argument(
        "--workers", type=int, help="local worker processes (same as --set runner.workers=N)"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show tracebacks and Beam's own logs"
    )
    parser.add_argument("--quiet", action="store_true", help="print only errors (no progress)")
    parser.add_argument(
        "--progress",
        choices=("auto", "rich", "plain", "off"),
        default="auto",
        help="live progress: a panel on a terminal, a line every 10 s otherwise (auto)",
    )


def _stage_list() -> str:
    """The registry's stages and the source kinds, for `gristmill run --help`."""
    from gristmill.pipelines import registry

    lines = ["stages, in flow order (set any key with --set SECTION.KEY=VALUE):"]
    for stage in registry.stages():
        lines.append(f"  {stage.name:<13} [{stage.section}] {stage.summary}")
    lines.append("source kinds (--source KIND=PATH):")
    lines.extend(f"  {name:<13} {kind.reads}" for name, kind in KINDS.items())
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gristmill", description="Raw text in, clean training data out."
    )
    parser.add_argument("--version", action="version", version=f"gristmill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run the corpus job",
        epilog=_stage_list(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _job_arguments(run)
    refresh = sub.add_parser(
        "refresh", help="build the next release from a previous one and new inputs"
    )
    refresh.add_argument("parent", help="the previous release (a directory with manifest.json)")
    _job_arguments(refresh)
    refresh.add_argument(
        "--retrain-tokenizer",
        action="store_true",
        help="train a tokenizer on the new documents instead of reusing the parent's",
    )
    for name, (_, help_text) in TOOLS.items():
        # Listed here for `gristmill --help` only: main() hands a tool's arguments, --help
        # included, to the tool's own parser before this one sees them.
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


TOOLS = {  # name -> (module with main(argv), one line for `gristmill --help`)
    "validate": ("gristmill.pipelines.tools.validate", "check a release against its manifest"),
    "report": ("gristmill.pipelines.report.run", "rebuild reports/run.html of a release"),
    "audit": (
        "gristmill.pipelines.tools.audit",
        "find listed personal values in a release, without printing them",
    ),
    "inspect": (
        "gristmill.pipelines.tools.inspect",
        "show a few decoded rows of a shard or documents file",
    ),
}


def run_tool(name: str, argv: list[str]) -> int:
    """A tool keeps its own parser, usage and exit codes, whether run as `gristmill NAME` or on
    its own; importing it only now keeps `gristmill run` from loading every tool."""
    import importlib

    return importlib.import_module(TOOLS[name][0]).main(argv)


def _summary(manifest: dict, output: str) -> str:
    lines = [f"release written to {output}"]
    for stage in manifest["stages"]:
        dropped = ", ".join(f"{r} {n}" for r, n in stage["dropped"].items()) or "none"
        lines.append(
            f"  {stage['name']:<10} in {stage['in']:>7}  kept {stage['kept']:>7}  dropped: {dropped}"
        )
    counts = manifest["counts"]
    lines.append(
        f"  documents {counts['documents']}, drops {counts['drops']}, dead letters {counts['dead_letters']}"
    )
    lines.append(f"  manifest: {output}/manifest.json")
    lines.append(f"  reports:  {output}/reports/run.html  {output}/reports/run.json")
    if any(o["path"].startswith("pii/") for o in manifest["outputs"]):
        lines.append(f"  privacy:  {output}/reports/privacy.html")
    if manifest.get("tokenizer"):
        shards = sum(1 for o in manifest["outputs"] if o["path"].startswith("shards/"))
        lines.append(f"  training: {output}/tokenizer.json  {output}/shards/ ({shards} shards)")
    lines.append(
        f"  documents: {output}/documents/   drops: {output}/drops/   dead letters: {output}/dead_letters/"
    )
    return "\n".join(lines)


class _QuietImports(logging.Filter):
    """Beam warns at import time about optional GCP client libraries we do not use."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def main(argv: list[str] | None = None) -> int:
    logging.getLogger().addFilter(_QuietImports())
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TOOLS:
        return run_tool(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if not args.quiet else logging.ERROR, format="%(message)s"
    )
    if not args.verbose:
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
        logging.getLogger("root").setLevel(logging.ERROR)
    try:
        if args.command in ("run", "refresh"):
            overrides = list(args.overrides)
            if args.workers is not None:
                overrides.append(f"runner.workers={args.workers}")
            if args.command == "refresh":
                overrides.append(f"refresh.parent={json.dumps(args.parent)}")
                if args.retrain_tokenizer:
                    overrides.append("refresh.tokenizer=retrain")
            if not args.job and not args.source:
                raise ConfigError(
                    f"{args.command}: give a job file, or --source KIND=PATH and --output DIR"
                )
            cfg = load(args.job, overrides, args.source, args.output)
            from gristmill.pipelines.job import run_job
            from gristmill.pipelines.progress import track as progress

            show = "off" if args.quiet else args.progress
            manifest = run_job(
                cfg,
                show=progress.display_mode(False) if show == "auto" else show,
                overwrite=args.overwrite,
            )
            if not args.quiet:
                print(_summary(manifest, cfg.output))
            return 0
    except ConfigError as err:
        print(f"gristmill: config error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        if args.verbose:
            raise
        from gristmill.pipelines.errors import one_line

        print(f"gristmill: {one_line(err)} (run with --verbose for the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

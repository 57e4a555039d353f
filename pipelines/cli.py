"""The `gristmill` command."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from gristmill import __version__
from gristmill.pipelines.config import ConfigError, JobConfig, load
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
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (files, bytes, stages, partitions, staging disk, estimated time) "
        "and exit without writing anything",
    )
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="write a machine-readable summary (or the --dry-run plan) to PATH, or stdout "
        "without PATH (the human summary then goes to stderr)",
    )
    parser.add_argument(
        "--latest",
        action="store_true",
        help="once the release is complete, point OUTPUT/../latest at it (a relative symlink)",
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


BEAM_EPILOG = """Beam's own pipeline options go after `--`, passed through to the runner after the
profile's own (see runners/profiles.py); --runner picks the profile and options named like
runner keys (--project, --region, --temp_location, --job_endpoint, ...) set them, e.g.
  gristmill run job.yaml -- --runner DataflowRunner --project p --region europe-west1 \\
      --temp_location gs://b/tmp --num_workers 20
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gristmill", description="Raw text in, clean training data out."
    )
    parser.add_argument("--version", action="version", version=f"gristmill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        usage="gristmill run [options] [job] [-- BEAM_OPTIONS ...]",
        help="run the corpus job",
        epilog=_stage_list() + "\n" + BEAM_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _job_arguments(run)
    run.add_argument(
        "--config-from",
        metavar="RELEASE",
        help="run a release's recorded config again (secrets by their env:NAME reference); "
        "--source, --set and a job file change it",
    )
    refresh = sub.add_parser(
        "refresh",
        help="build the next release from a previous one and new inputs",
        description="The parent's configuration is kept (sources aside); every setting the "
        "job file or --set changes is listed before work and recorded in the manifest. "
        "Without --source or a job file, the parent's sources are read again and the files "
        "it already read are skipped.",
        usage="gristmill refresh [options] parent [job] [-- BEAM_OPTIONS ...]",
        epilog=BEAM_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    "erase": (
        "gristmill.pipelines.tools.erase",
        "write a new release without the documents that hold listed values",
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


def _split_beam(argv: list[str]) -> tuple[list[str], list[str]]:
    """(gristmill's arguments, Beam's options after `--`)."""
    if argv and argv[0] in ("run", "refresh") and "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def _load(args: argparse.Namespace, beam_args: list[str]) -> JobConfig:
    """The job's config from the command line, Beam's options in the runner section."""
    from gristmill.runners.profiles import ProfileError, absorb_beam_args

    overrides = list(args.overrides)
    try:
        settings, rest = absorb_beam_args(beam_args)
    except ProfileError as err:
        raise ConfigError(f"runner.{err}") from None
    overrides += [f"runner.{k}={json.dumps(v)}" for k, v in settings.items()]
    if args.workers is not None:
        overrides.append(f"runner.workers={args.workers}")
    base = None
    if args.command == "refresh":
        overrides.append(f"refresh.parent={json.dumps(args.parent)}")
        if args.retrain_tokenizer:
            overrides.append("refresh.tokenizer=retrain")
    elif args.config_from:
        base = replay_base(args.config_from)
    elif not args.job and not args.source:
        raise ConfigError(
            "run: give a job file, --config-from RELEASE, or --source KIND=PATH and --output DIR"
        )
    cfg = load(args.job, overrides, args.source, args.output, base=base)
    cfg.raw["runner"]["args"] = [*cfg.raw["runner"].get("args", []), *rest]
    if base is not None:
        say_replay_changes(args.config_from, cfg)
    if args.latest:
        from gristmill.pipelines import latest

        latest.check(cfg.output)
    return cfg


def replay_base(release: str) -> dict:
    """A release's recorded config, as job data to run again."""
    from gristmill.pipelines import recorded

    manifest = recorded.read_manifest(release)
    if manifest is None or not isinstance(manifest.get("config"), dict):
        raise ConfigError(f"--config-from {release}: no manifest.json, so not a finished release")
    return recorded.replayable(manifest["config"])


def say_replay_changes(release: str, cfg: JobConfig) -> None:
    from gristmill.pipelines import recorded

    manifest = recorded.read_manifest(release) or {}
    if manifest.get("config_sha256") != cfg.sha256():
        found = recorded.changes(manifest.get("config", {}), cfg.recorded())
        logging.getLogger("gristmill").info("%s", recorded.describe(found, release))


def _run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from gristmill.pipelines import summary

    cfg = _load(args, beam_args)
    if args.dry_run:
        from gristmill.pipelines import dryrun

        plan = dryrun.plan(cfg, overwrite=args.overwrite)
        summary.emit(args.json, plan, dryrun.render(plan), args.quiet)
        fits = plan.get("staging", {}).get("fits", True)
        return 0 if fits else 2
    from gristmill.pipelines.job import run_job
    from gristmill.pipelines.progress import track as progress

    show = "off" if args.quiet else args.progress
    manifest = run_job(
        cfg, show=progress.display_mode(False) if show == "auto" else show, overwrite=args.overwrite
    )
    pointer = None
    if args.latest:
        from gristmill.pipelines import latest

        pointer = latest.point(cfg.output)
    data = summary.as_json(manifest, cfg.output, pointer)
    summary.emit(args.json, data, summary.human(manifest, cfg.output, pointer), args.quiet)
    return 0


def _configure_logging(quiet: bool, verbose: bool) -> None:
    """Lines as plain messages. Importing Beam's stack may already have given the root a
    handler (with Python's default format): that one is reformatted rather than replaced, so
    handlers others installed (a test's log capture) stay."""
    root = logging.getLogger()
    plain = logging.Formatter("%(message)s")
    terminal = [
        h
        for h in root.handlers
        if type(h) is logging.StreamHandler and h.stream in (sys.stderr, sys.stdout)
    ]
    if not terminal:
        logging.basicConfig(format="%(message)s")
    for handler in terminal:
        handler.setFormatter(plain)
    # the root's level filters Beam's own lines; gristmill's (the plan, a refresh's changed
    # settings, warnings) show whatever it is, unless --quiet
    root.setLevel(logging.INFO if verbose else logging.ERROR)
    logging.getLogger("gristmill").setLevel(logging.ERROR if quiet else logging.INFO)
    if not verbose:
        logging.getLogger("apache_beam").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    from gristmill.runners.lean import import_beam
    from gristmill.runners.local.memory import arrow_pool_from_system

    arrow_pool_from_system()  # before pyarrow loads
    import_beam()  # before anything else imports it
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TOOLS:
        return run_tool(argv[0], argv[1:])
    argv, beam_args = _split_beam(argv)
    args = _parser().parse_args(argv)
    _configure_logging(args.quiet, args.verbose)
    from gristmill.pipelines import summary

    try:
        return _run(args, beam_args)
    except ConfigError as err:
        summary.failed(args.json, f"config error: {err}", 2)
        return 2
    except Exception as err:
        if args.verbose:
            raise
        from gristmill.pipelines.errors import one_line

        summary.failed(args.json, one_line(err), 1, hint=" (run with --verbose for the traceback)")
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""`gristmill run --dry-run`: the plan of a job, and nothing written.

The same checks as a real run before its work (the config, a refresh's parent, the inputs,
the output), then what the run would do: the files and bytes per source (a refresh's files
already read left out), the stages, the runner, the local partitions and the staging disk they
need against what the output's filesystem has free, and a time estimate from the ETA's priors.
It reads only: the staging area is sized with plan_partitions/staging_bytes, never through the
local phases' plan(), which prunes old staging folders.
"""

from __future__ import annotations

from typing import Any

from gristmill.pipelines.config import ConfigError, JobConfig


def _inputs(files: dict[str, list]) -> dict[str, Any]:
    by_source = {
        name: {"files": len(group), "bytes": sum(f.size for f in group)}
        for name, group in files.items()
    }
    return {
        "files": sum(s["files"] for s in by_source.values()),
        "bytes": sum(s["bytes"] for s in by_source.values()),
        "by_source": by_source,
    }


def _local(cfg: JobConfig, job: Any) -> dict[str, Any]:
    """Partitions and the staging area of a local run."""
    from gristmill.pipelines.phases.plan import partitions_of, staging_bytes
    from gristmill.pipelines.phases.staging import free_bytes

    runner = cfg.section("runner")
    parts = partitions_of(cfg, job.files)
    need, free = staging_bytes(job.input_bytes), free_bytes(cfg.output)
    return {
        "partitions": {
            "count": len(parts),
            "max_bytes": int(runner["partition_bytes"]),
            "largest_bytes": max((p.bytes for p in parts), default=0),
        },
        "staging": {"bytes_needed": need, "bytes_free": free, "fits": free is None or free >= need},
    }


def plan(cfg: JobConfig, overwrite: bool = False) -> dict[str, Any]:
    """The plan as data (the --json form); raises ConfigError where a real run would."""
    from gristmill.pipelines import graph, refresh
    from gristmill.pipelines.progress.estimate import JobShape
    from gristmill.pipelines.progress.forecast import forecast
    from gristmill.pipelines.release import guard
    from gristmill.runners import is_local
    from gristmill.transforms.sources.read import NoMatch

    parent = refresh.prepare(cfg)
    try:
        job = graph.plan(cfg, parent.skip_consumed if parent else None)
    except NoMatch as err:
        raise ConfigError(f"sources: {err} matches no file") from None
    inputs = [f.path for group in job.files.values() for f in group]
    try:
        replace = guard.check_output(cfg.output, inputs, overwrite)
    except guard.OutputError as err:
        raise ConfigError(str(err)) from None
    runner = cfg.section("runner")
    out: dict[str, Any] = {
        "dry_run": True,
        "output": cfg.output,
        "output_state": "replaced when complete" if replace else "new",
        "config_sha256": cfg.sha256(),
        "inputs": _inputs(job.files),
        "stages": job.stages,
        "steps": job.steps,
        "runner": {
            "profile": runner["profile"],
            "workers": runner["workers"],
            "beam_args": [str(a) for a in runner.get("args", [])],
        },
    }
    if parent is not None:
        out["refresh"] = {
            "parent": parent.parent,
            "tokenizer": parent.tokenizer,
            "inputs_skipped": len(parent.skipped),
            "config_changes": parent.changes,
        }
    if is_local(runner):
        out.update(_local(cfg, job))
        source_bytes = {name: s["bytes"] for name, s in out["inputs"]["by_source"].items()}
        shape = JobShape(job.stages, source_bytes, int(runner["workers"]), job.steps)
        phases = forecast(shape, {s.name: s.kind for s in cfg.sources})
        out["estimate"] = {"seconds": round(sum(phases.values()), 1), "by_phase": phases}
    return out


def _mb(n: int | None) -> str:
    return "unknown" if n is None else f"{n / 1e6:,.1f} MB"


def render(plan: dict[str, Any]) -> str:
    """The plan for a person: one fact a line."""
    from gristmill.pipelines.progress.view import clock

    inputs = plan["inputs"]
    lines = ["gristmill: dry run (nothing read past the file list, nothing written)"]
    lines.append(f"  inputs:     {inputs['files']} files, {_mb(inputs['bytes'])}")
    lines += [
        f"    {name:<10} {s['files']} files, {_mb(s['bytes'])}"
        for name, s in inputs["by_source"].items()
    ]
    if "refresh" in plan:
        r = plan["refresh"]
        lines.append(
            f"  refresh of: {r['parent']} ({r['inputs_skipped']} files already read, skipped; "
            f"tokenizer {r['tokenizer']}; {len(r['config_changes'])} setting(s) changed)"
        )
    lines.append(f"  stages:     {' > '.join(plan['stages'])}")
    if plan["steps"]:
        lines.append(f"  then:       {' > '.join(plan['steps'])}")
    runner = plan["runner"]
    extra = f", Beam options {' '.join(runner['beam_args'])}" if runner["beam_args"] else ""
    lines.append(f"  runner:     {runner['profile']}, {runner['workers']} worker(s){extra}")
    if "partitions" in plan:
        p, s = plan["partitions"], plan["staging"]
        lines.append(
            f"  partitions: {p['count']} of at most {p['max_bytes'] / 2**20:,.0f} MiB "
            f"(largest {_mb(p['largest_bytes'])})"
        )
        verdict = "fits" if s["fits"] else "DOES NOT FIT: the run would stop"
        lines.append(
            f"  staging:    about {_mb(s['bytes_needed'])} inside the output; "
            f"{_mb(s['bytes_free'])} free ({verdict})"
        )
        lines.append(
            f"  estimate:   about {clock(plan['estimate']['seconds'])} "
            "(priors before any measurement; the live display corrects it)"
        )
    lines.append(f"  output:     {plan['output']} ({plan['output_state']})")
    return "\n".join(lines)

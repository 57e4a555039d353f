"""Named runner profiles, mapped to Beam's own options.

A profile says where a job runs, never what it does. Each profile lists the keys it needs;
`check_profile` names the first missing one before any work starts, and `reachable` fails fast
(seconds, not a hang) when a job endpoint does not answer.

Beam's own options pass through: `runner.args` in the job file, or everything after `--` on
the command line (`gristmill run job.yaml -- --runner DataflowRunner --project p ...`). They
reach Beam's PipelineOptions after the profile's own, so a later option wins. `--runner` picks
the profile (`PROFILE_OF_RUNNER`) and an option that is a key of the runner section
(`--project`, `--region`, `--temp_location`, `--job_endpoint`, `--flink_master`, ...) sets that
key, so the profile's checks still run before any work. On the local profile the options go to
the in-process FnApiRunner's pipelines.
"""

from __future__ import annotations

import socket
from typing import Any

# profile -> keys that must be set for it
REQUIRED: dict[str, tuple[str, ...]] = {
    "local": (),
    "portable": ("job_endpoint",),
    "dataflow": ("project", "region", "temp_location"),
    "flink": ("flink_master",),
    "spark": ("spark_master_url",),
}
PROFILES = tuple(REQUIRED)

# The runner section's keys and defaults (profile-specific keys are None when unused).
RUNNER_DEFAULTS: dict[str, Any] = {
    "profile": "local",
    "workers": 1,  # local: processes that take the input's partitions one after another
    # local: input bytes per partition (bounds a worker's memory); larger files are cut where
    # their format allows (transforms/sources/splits.py)
    "partition_bytes": 32 << 20,
    # local: documents whose LSH band entries phase 2 groups at once (bounds its memory)
    "range_docs": 25_000,
    "job_endpoint": None,
    "environment_type": None,
    "environment_config": None,
    "project": None,
    "region": None,
    "temp_location": None,
    "staging_location": None,
    "sdk_container_image": None,
    "flink_master": None,
    "spark_master_url": None,
    "max_num_workers": None,
    "package": "wheel",
    "args": [],
}
ENVIRONMENTS = ("EXTERNAL", "LOOPBACK", "PROCESS", "DOCKER")


# Beam's --runner value -> the profile that runs it (the local profile is Beam's FnApiRunner,
# chosen explicitly: the DirectRunner would first try to download the Prism binary)
PROFILE_OF_RUNNER = {
    "FnApiRunner": "local",
    "DirectRunner": "local",
    "PortableRunner": "portable",
    "DataflowRunner": "dataflow",
    "FlinkRunner": "flink",
    "SparkRunner": "spark",
}
NOT_OPTIONS = ("profile", "workers", "partition_bytes", "range_docs", "package", "args")


class ProfileError(ValueError):
    pass


def _pairs(args: list[str]) -> list[tuple[str, str | None, list[str]]]:
    """Beam options as (name, value, the words they came as): `--a=b`, `--a b` or a flag."""
    out: list[tuple[str, str | None, list[str]]] = []
    i = 0
    while i < len(args):
        word = args[i]
        if not word.startswith("--"):
            raise ProfileError(f"args: {word!r} is not a Beam option (--name=value)")
        name, eq, value = word[2:].partition("=")
        if eq:
            out.append((name, value, [word]))
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            out.append((name, args[i + 1], [word, args[i + 1]]))
            i += 1
        else:
            out.append((name, None, [word]))
        i += 1
    return out


def absorb_beam_args(args: list[str]) -> tuple[dict[str, str], list[str]]:
    """Beam options given after `--`: (runner-section keys they set, the options passed on
    verbatim). `--runner X` becomes the profile; `--project p` the key runner.project."""
    settings: dict[str, str] = {}
    rest: list[str] = []
    for name, value, words in _pairs([str(a) for a in args]):
        if name == "runner":
            if value not in PROFILE_OF_RUNNER:
                known = ", ".join(PROFILE_OF_RUNNER)
                raise ProfileError(f"args: --runner {value}: gristmill runs {known}")
            settings["profile"] = PROFILE_OF_RUNNER[value]
        elif name in RUNNER_DEFAULTS and name not in NOT_OPTIONS and value is not None:
            settings[name] = value
        else:
            rest.extend(words)
    return settings, rest


def check_profile(section: dict[str, Any]) -> None:
    """Raise ProfileError naming the first unknown profile or missing/invalid key."""
    name = section.get("profile")
    if name not in REQUIRED:
        raise ProfileError(f"profile: must be one of {', '.join(PROFILES)}, got {name!r}")
    for key in REQUIRED[name]:
        if not section.get(key):
            raise ProfileError(f"{key}: the {name} profile needs it (runner.{key})")
    env = section.get("environment_type")
    if env is not None and env not in ENVIRONMENTS:
        raise ProfileError(
            f"environment_type: must be one of {', '.join(ENVIRONMENTS)}, got {env!r}"
        )
    if name == "dataflow":
        for key in ("temp_location", "staging_location"):
            value = section.get(key)
            if value and not str(value).startswith("gs://"):
                raise ProfileError(f"{key}: Dataflow needs a gs:// location, got {value!r}")
    if section.get("package") not in ("wheel", "none"):
        raise ProfileError(f"package: must be wheel or none, got {section.get('package')!r}")
    if not isinstance(section.get("args", []), list):
        raise ProfileError("args: expected a list of extra Beam options, e.g. ['--num_workers=4']")


def reachable(endpoint: str, timeout: float = 3.0) -> None:
    """Connect once to HOST:PORT; raise ProfileError within `timeout` seconds if nobody answers."""
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit():
        raise ProfileError(f"job_endpoint: expected HOST:PORT, got {endpoint!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except OSError as err:
        raise ProfileError(
            f"job_endpoint: {endpoint} does not answer ({err.strerror or err}); "
            "start the job service or fix runner.job_endpoint"
        ) from None


def beam_args(section: dict[str, Any], packages: list[str]) -> list[str]:
    """Beam command-line options for a non-local profile."""
    name = section["profile"]
    args: list[str] = []
    if name == "portable":
        args += ["--runner=PortableRunner", f"--job_endpoint={section['job_endpoint']}"]
    elif name == "dataflow":
        args += [
            "--runner=DataflowRunner",
            f"--project={section['project']}",
            f"--region={section['region']}",
            f"--temp_location={section['temp_location']}",
        ]
        if section.get("staging_location"):
            args.append(f"--staging_location={section['staging_location']}")
        if section.get("max_num_workers"):
            args.append(f"--max_num_workers={section['max_num_workers']}")
    elif name == "flink":
        args += ["--runner=FlinkRunner", f"--flink_master={section['flink_master']}"]
    elif name == "spark":
        args += ["--runner=SparkRunner", f"--spark_master_url={section['spark_master_url']}"]
    if section.get("environment_type"):
        args.append(f"--environment_type={section['environment_type']}")
    if section.get("environment_config"):
        args.append(f"--environment_config={section['environment_config']}")
    if section.get("sdk_container_image"):
        args.append(f"--sdk_container_image={section['sdk_container_image']}")
    args += [f"--extra_package={p}" for p in packages]
    args += [str(a) for a in section.get("args", [])]
    return args

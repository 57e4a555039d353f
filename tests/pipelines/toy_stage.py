"""A toy stage, as a newcomer would add one: this module, and one line in the registry.

It drops every document whose id hashes to a multiple of `modulus`, with reason `toy_pick`.
"""

from __future__ import annotations

from dataclasses import dataclass

import xxhash

from gristmill.schemas.records import Document
from gristmill.transforms.params import option
from gristmill.transforms.stage import DocFilter, FilterStage, Stage, StageContext


@dataclass(frozen=True)
class ToyParams:
    enabled: bool = option(True, "run the toy stage")
    modulus: int = option(3, "drop one document in this many (by id hash)", min=2)


class ToyFilter(DocFilter):
    stage = "toy"

    def __init__(self, params: ToyParams):
        self.params = params

    def check(self, doc: Document) -> tuple[str, str] | None:
        if xxhash.xxh64_intdigest(doc.id.encode()) % self.params.modulus == 0:
            return "toy_pick", f"modulus={self.params.modulus}"
        return None


def build(params: ToyParams, ctx: StageContext) -> FilterStage:
    return FilterStage(ToyFilter(params))


STAGE = Stage(name="toy", section="toy", params=ToyParams, build=build, summary="a toy")

"""Training on a release with Hugging Face's own tools, on CPU: `AutoTokenizer` on the release
folder, the shards from `load_dataset`, the `Trainer` (with accelerate, in the train extra)
running a tiny BertForMaskedLM built from a config (nothing is downloaded). Static shards carry
their labels (default_data_collator); dynamic ones are masked per batch by
DataCollatorForLanguageModeling, with the Trainer and with `MlmShards` in a plain loop.
Skipped when torch, transformers, datasets or accelerate are not installed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from training_helpers import run_release

torch = pytest.importorskip("torch", reason="torch is in the train extra")
transformers = pytest.importorskip("transformers", reason="transformers is in the train extra")
datasets = pytest.importorskip("datasets", reason="datasets is in the train extra")
pytest.importorskip("accelerate", reason="the Trainer needs accelerate (train extra)")

from gristmill.schemas.mlm_shards import MlmShards  # noqa: E402

STEPS = 3


@pytest.fixture(scope="module", params=["static", "dynamic"])
def release(request, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp(f"hf-{request.param}") / "release"
    run_release(out, f"mlm.masking={request.param}", sources=("books",))
    return out, request.param


def _tiny_bert(tokenizer) -> transformers.BertForMaskedLM:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=tokenizer.model_max_length,
        pad_token_id=tokenizer.pad_token_id,
    )
    return transformers.BertForMaskedLM(config)


def _collator(tokenizer, masking: str):
    if masking == "static":  # the shards' own masks and labels, as written
        return transformers.default_data_collator
    return transformers.DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=0)


@pytest.mark.job
def test_the_trainer_runs_on_the_shards(release, tmp_path):
    out, masking = release
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(out))
    assert tokenizer.model_max_length == 64 and tokenizer.mask_token == "[MASK]"
    data = datasets.load_dataset(str(out), "mlm", data_dir="shards", cache_dir=str(tmp_path))
    assert ("labels" in data["train"].column_names) == (masking == "static")
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        max_steps=STEPS,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
    )
    trainer = transformers.Trainer(
        model=_tiny_bert(tokenizer),
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"].select(range(min(16, data["validation"].num_rows))),
        data_collator=_collator(tokenizer, masking),
    )
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert result.global_step == STEPS and len(losses) == STEPS
    # an untrained model over a 1000-token vocabulary: about ln(1000) per predicted token
    assert all(math.isfinite(x) and 4.0 < x < 9.0 for x in losses), losses
    metrics = trainer.evaluate()
    assert math.isfinite(metrics["eval_loss"])


def _batches(out: Path, masking: str, tokenizer):
    """The README's loop: MlmShards as it is for static shards (batches made by the reader),
    with the masking collator as the DataLoader's collate_fn for dynamic ones."""
    if masking == "static":
        data = MlmShards(str(out), split="train", shuffle=True, seed=0, batch_size=16)
        for batch in torch.utils.data.DataLoader(data, batch_size=None):
            batch.pop("special_tokens_mask")
            yield batch
    else:
        data = MlmShards(str(out), split="train", shuffle=True, seed=0)
        collator = _collator(tokenizer, masking)
        yield from torch.utils.data.DataLoader(data, batch_size=16, collate_fn=collator)


@pytest.mark.job
def test_a_plain_loop_over_mlm_shards_has_a_loss(release):
    """Every batch has labels on about 15% of the real tokens, never on a special one (dynamic
    masking draws them anew per batch), so the model's loss is defined."""
    out, masking = release
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(out))
    model = _tiny_bert(tokenizer)
    picked = real = 0
    for step, batch in enumerate(_batches(out, masking, tokenizer)):
        assert "special_tokens_mask" not in batch
        labels = batch["labels"].numpy()
        assert not np.isin(labels, tokenizer.all_special_ids).any(), "never a special target"
        picked += int((labels != -100).sum())
        real += int((batch["attention_mask"].numpy() == 1).sum())
        loss = model(**batch).loss
        assert loss is not None and torch.isfinite(loss)
        if step == 9:
            break
    assert 0.08 < picked / real < 0.2, picked / real

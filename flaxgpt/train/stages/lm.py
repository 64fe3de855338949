"""Pretraining and SFT: the masked next-token loss on token shards (``flaxgpt.train.steps.make_lm_step``).

The two differ only in their data: pretraining packs documents from any shards (``flaxgpt tokenize``/``ingest``
output); SFT packs whole conversations from chat shards (``flaxgpt tokenize-chat``), whose loss mask keeps the
assistant's tokens only. Validation is the loss and perplexity per source on each source's ``val`` split
(``flaxgpt.train.evaluate``), every ``train.eval_every`` steps.
"""

from __future__ import annotations

from typing import Any

import jax

from flaxgpt.data.loader import BATCH_KEYS, build_eval_batches, build_train_iterator, expand_mixtures
from flaxgpt.data.shards import ShardSet
from flaxgpt.data.tokenizer import check_compatible
from flaxgpt.train.evaluate import compile_nll, evaluate_sources
from flaxgpt.train.sharding import put_batch
from flaxgpt.train.stages.base import DataSource, IteratorSource, RunContext, Stage, Validate, policy
from flaxgpt.train.steps import make_lm_step


def _sources(config: Any) -> dict[str, tuple[Any, float]]:
    """``data.sources`` as name -> (shard directory, weight), ingest outputs expanded into their sources."""
    return expand_mixtures({name: (src.path, float(src.weight)) for name, src in config.data.sources.items()})


def _check_tokenizer(sources: dict[str, tuple[Any, float]], expected: dict) -> None:
    """Refuses shards made with another tokenizer than ``data.tokenizer`` (their ids would mean other text)."""
    for name, (path, _) in sources.items():
        try:
            meta = ShardSet(path, "train").tokenizer_meta
        except FileNotFoundError as err:
            raise FileNotFoundError(f"data.sources.{name}.path: {err}") from err
        check_compatible(meta, expected, f"data.sources.{name}: shards in {path} vs data.tokenizer "
                                         f"{expected['name']!r}")


def _report_conversations(sources: dict[str, tuple[Any, float]], seq_len: int) -> None:
    """Checks every SFT source carries loss masks; prints its trained tokens and the conversations cut to fit."""
    for name, (path, _) in sources.items():
        shards = ShardSet(path, "train")
        if not shards.has_mask:
            raise ValueError(f"data.sources.{name}: shards in {path} have no loss mask (a `flaxgpt tokenize` "
                             "output); train.stage=sft trains on `flaxgpt tokenize-chat` output")
        lengths = shards.document_lengths()
        cut = int((lengths > seq_len + 1).sum())
        line = (f"data.sources.{name}: {len(shards):,} train conversations, {shards.trained_tokens:,} of "
                f"{shards.num_tokens:,} tokens trained")
        if cut:
            line += (f"; {cut} longer than data.seq_len + 1 = {seq_len + 1} tokens are cut to it "
                     f"(longest {int(lengths.max())})")
        if jax.process_index() == 0:
            print(line)


def _lm_stage(name: str, doc: str, chat: bool) -> Stage:
    """The Stage of masked next-token training on token shards; ``chat``: whole conversations, masked loss."""

    def check(config: Any) -> None:
        if not config.data.sources:
            raise ValueError("config has no data.sources: set data.sources.NAME.path=DIR (a `flaxgpt tokenize` "
                             "output)")
        if chat and not config.data.document_mask:
            raise ValueError(f"config key 'data.document_mask': train.stage={name} packs whole conversations into "
                             "rows and needs attention kept inside each one; set data.document_mask=True")
        if chat and not config.train.init_from:
            print(f"note: train.stage={name} with no train.init_from: fine-tuning a randomly initialised model")

    def make_data(ctx: RunContext) -> DataSource:
        config = ctx.config
        sources = _sources(config)
        _check_tokenizer(sources, ctx.tokenizer.metadata())
        if chat:
            _report_conversations(sources, config.data.seq_len)
        batch = ctx.global_batch()
        it = build_train_iterator(sources, seq_len=config.data.seq_len, batch_size=batch, seed=config.train.seed,
                                  eot_id=ctx.tokenizer.eot_id, prefetch=config.data.prefetch, sft=chat)
        return IteratorSource(it, BATCH_KEYS, config.train.grad_accum, config.train.batch_size)

    def make_validation(ctx: RunContext, data: DataSource) -> Validate | None:
        t = ctx.config.train
        if t.eval_every <= 0:
            return None
        host = build_eval_batches(_sources(ctx.config), seq_len=ctx.config.data.seq_len, batch_size=ctx.global_batch(),
                                  eot_id=ctx.tokenizer.eot_id, max_batches=t.eval_batches, sft=chat)
        rows = dict.fromkeys(BATCH_KEYS, ctx.batch_sharding(2))
        batches = {name: [put_batch({k: b[k] for k in BATCH_KEYS}, rows) for b in source_batches]
                   for name, source_batches in host.items()}  # fixed for the run: on devices once
        nll = compile_nll(ctx.model, ctx.mesh, ctx.rules, ctx.shardings.params,
                          document_mask=ctx.config.data.document_mask)
        return lambda params: evaluate_sources(nll, params, batches)

    def make_step(model: Any, tx: Any, schedule: Any, config: Any) -> Any:
        return make_lm_step(model, tx, schedule, document_mask=config.data.document_mask)

    return Stage(name=name, doc=doc, trainable=policy, batch_keys=BATCH_KEYS, make_step=make_step,
                 make_data=make_data, make_validation=make_validation, check=check)


PRETRAIN = _lm_stage("pretrain", "next-token prediction on token shards (documents packed into rows)", chat=False)
SFT = _lm_stage("sft", "supervised fine-tuning on chat shards: loss on the assistant's tokens only", chat=True)

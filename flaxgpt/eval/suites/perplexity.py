"""The "perplexity" suite: validation loss and perplexity of a run on token shards, per source.

The shards are ``ctx.data`` (each a `flaxgpt tokenize`/`tokenize-chat`/`ingest` output; ingest outputs
expand to their sources) or, without them, the run's own ``data.sources`` from its saved config. Only
the ``val`` split is read. The numbers are the trainer's own evaluation (``flaxgpt.train.evaluate`` over
``build_eval_batches``), so they match the ``eval`` records of the run's metrics.jsonl. Chat shards (with a
loss mask) count only the tokens SFT trains on (the assistant's replies and their end-of-turn), packed whole
with attention kept inside each conversation; plain shards count every token, with the run's own
``data.document_mask``.
``ctx.limit`` (when set) caps the validation batches (of 8 rows) read per source.

Metrics: ``val_ppl`` (all sources, token-weighted), ``val_loss``, then ``val_ppl/<source>`` and
``val_loss/<source>`` per source.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from flaxgpt.data.loader import build_eval_batches, expand_mixtures
from flaxgpt.data.shards import ShardSet
from flaxgpt.data.tokenizer import check_compatible
from flaxgpt.eval.suite import EvalContext, EvalRun, SuiteResult, suite
from flaxgpt.model.gpt import GPT
from flaxgpt.runs.rundir import param_shardings
from flaxgpt.train.evaluate import compile_nll, evaluate_sources
from flaxgpt.train.evaluate import perplexity as ppl
from flaxgpt.train.sharding import logical_rules, make_mesh

EVAL_BATCH = 8  # rows per evaluation batch (one device)


def _sources(run: EvalRun, ctx: EvalContext, config) -> tuple[dict[str, tuple[Path, float]], str]:
    """(name -> (shard dir, weight), where they came from)."""
    if ctx.data:
        named: dict[str, tuple[Path, float]] = {}
        for d in ctx.data:
            name = Path(d).name or str(d)
            while name in named:  # two folders with one name: keep both
                name += "_"
            named[name] = (Path(d), 1.0)
        return expand_mixtures(named), "--data"
    sources = {name: (src.path, float(src.weight)) for name, src in config.data.sources.items()}
    return expand_mixtures(sources), f"{run.run_dir}'s config data.sources"


def _val_shards(sources: dict[str, tuple[Path, float]]) -> tuple[dict, list[str]]:
    """(name -> ShardSet of the val split, reasons the others have none)."""
    found, absent = {}, []
    for name, (path, _) in sources.items():
        try:
            found[name] = ShardSet(path, "val")
        except FileNotFoundError as err:
            absent.append(f"{name}: {err}")
    return found, absent


@suite("perplexity")
def perplexity(run: EvalRun, ctx: EvalContext) -> SuiteResult:
    """Validation perplexity of ``run`` per source (module docstring); missing without validation shards."""
    model_run = run.load()
    config = model_run.config
    sources, origin = _sources(run, ctx, config)
    if not sources:
        return SuiteResult.missing("perplexity", f"no data sources: {origin} is empty (a {config.train.stage} run "
                                                 "trains on comparisons); pass --data DIR")
    shards, absent = _val_shards(sources)
    if not shards:
        return SuiteResult.missing("perplexity", "no validation shards: " + "; ".join(absent))
    tok_meta = model_run.tokenizer.metadata()
    for name, s in shards.items():
        check_compatible(s.tokenizer_meta, tok_meta, f"perplexity source {name!r} ({s.directory}) vs the run's "
                                                     f"tokenizer {config.data.tokenizer!r}")

    # One device: evaluation of a checkpoint is small next to training, and any run fits where it decodes.
    mesh = make_mesh(config.mesh, devices=jax.devices()[:1])
    rules = logical_rules(config.mesh.rules)
    model = GPT(model_run.model_cfg)
    shardings = param_shardings(model_run.model_cfg, mesh, rules)
    params = jax.device_put(model_run.params, shardings)
    seq_len = min(config.data.seq_len, model_run.model_cfg.max_len)
    eval_fns = {}
    losses: dict[str, float] = {}
    tokens: dict[str, float] = {}
    details: list[dict] = [{"source": a.split(":")[0], "missing": a} for a in absent]
    for name, s in shards.items():
        masked = s.has_mask
        if masked not in eval_fns:  # conversations are scored alone, as SFT trains them
            eval_fns[masked] = compile_nll(model, mesh, rules, shardings,
                                           document_mask=masked or config.data.document_mask)
        host = build_eval_batches({name: (s.directory, 1.0)}, seq_len=seq_len, batch_size=EVAL_BATCH,
                                  eot_id=model_run.tokenizer.eot_id, max_batches=ctx.limit or None,
                                  shard_index=0, shard_count=1, sft=masked)[name]
        ev = evaluate_sources(eval_fns[masked], params, {name: host})
        n = float(sum(np.sum(b["weights"]) for b in host))
        detail = {"source": name, "path": str(s.directory), "masked": masked, "tokens": n, "batches": len(host)}
        if f"val_loss/{name}" in ev:
            losses[name], tokens[name] = ev[f"val_loss/{name}"], n
            detail.update(val_loss=losses[name], val_ppl=ppl(losses[name]))
        details.append(detail)
    if not losses:
        return SuiteResult.missing("perplexity", "the validation shards hold no scored tokens: "
                                                 + ", ".join(str(s.directory) for s in shards.values()))
    # Token-weighted over sources, as the trainer's own evaluation weighs them.
    val_loss = sum(losses[n] * tokens[n] for n in losses) / sum(tokens.values())
    metrics = {"val_ppl": ppl(val_loss), "val_loss": val_loss}
    for name, loss in losses.items():
        metrics[f"val_ppl/{name}"] = ppl(loss)
        metrics[f"val_loss/{name}"] = loss
    return SuiteResult("perplexity", metrics, details)

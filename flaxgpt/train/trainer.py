"""The training loop: the one place with side effects (data, devices, checkpoints, logs, signals).

``train(config)`` builds everything from one resolved config, resumes from the run directory's
latest complete checkpoint, runs the compiled step, evaluates, checkpoints asynchronously, and
stops cleanly on SIGINT/SIGTERM (saving first) or on a non-finite loss (keeping the last good
checkpoint).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import time
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from flaxgpt.config import run_dir, to_json
from flaxgpt.data.loader import BATCH_KEYS, build_eval_batches, build_train_iterator, expand_mixtures
from flaxgpt.data.preferences import build_pair_iterator
from flaxgpt.data.shards import ShardSet
from flaxgpt.data.tokenizer import check_compatible, load_tokenizer
from flaxgpt.model.gpt import GPT, ModelConfig, count_params, gpt2_param_count
from flaxgpt.train import checkpoint as ckpt
from flaxgpt.train.logger import MetricsLogger, plot_loss
from flaxgpt.train.mfu import flops_per_token_maxtext, flops_per_token_nanogpt, peak_flops_per_device
from flaxgpt.train.optim import lr_schedule, make_optimizer
from flaxgpt.train.pairs import center_state, make_pair_eval, needs_initial_params, prepare_pairs
from flaxgpt.train.sharding import batch_sharding, compile_step, logical_rules, make_mesh, put_batch
from flaxgpt.train.state import TrainState, abstract_train_state, initial_state
from flaxgpt.train.steps import STAGES, make_eval_step, make_train_step

PAIR_STAGES = ("pm", "dpo")  # stages trained on comparisons (flaxgpt/data/preferences.py) instead of token shards

log = logging.getLogger("flaxgpt")


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or inf; the run stopped without saving the bad state."""


class _StopFlag:
    """Turns the first SIGINT/SIGTERM into a request to save and stop at the next step boundary."""

    def __init__(self):
        self.requested: str | None = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second signal: stop now
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _micro_batches(batch: dict[str, np.ndarray], grad_accum: int) -> dict[str, np.ndarray]:
    """[B, T] -> [grad_accum, B / grad_accum, T]: consecutive rows form one micro-batch."""
    return {k: v.reshape(grad_accum, v.shape[0] // grad_accum, *v.shape[1:]) for k, v in batch.items()}


def _check_batch_layout(config: ml_collections.ConfigDict, mesh) -> int:
    """Returns the per-host batch size after checking it splits over hosts, micro-batches and devices."""
    t = config.train
    hosts = jax.process_count()
    data_parallel = mesh.shape["data"] * mesh.shape["fsdp"]
    micro = t.batch_size // t.grad_accum
    if t.batch_size % hosts:
        raise ValueError(f"train.batch_size={t.batch_size} must divide over {hosts} hosts")
    if micro % data_parallel:
        raise ValueError(f"micro-batch train.batch_size/train.grad_accum={micro} must be divisible by the "
                         f"data-parallel devices mesh.data*mesh.fsdp={data_parallel}")
    return t.batch_size // hosts


def _check_tokenizer(sources: dict[str, tuple[str, float]], expected: dict) -> None:
    """Refuses shards made with another tokenizer than ``data.tokenizer`` (their ids would mean other text)."""
    for name, (path, _) in sources.items():
        try:
            meta = ShardSet(path, "train").tokenizer_meta
        except FileNotFoundError as err:
            raise FileNotFoundError(f"data.sources.{name}.path: {err}") from err
        check_compatible(meta, expected, f"data.sources.{name}: shards in {path} vs data.tokenizer "
                                         f"{expected['name']!r}")


def _check_stage(config: ml_collections.ConfigDict) -> bool:
    """Checks ``train.stage`` can run here; returns True for SFT (chat shards, whole-conversation packing)."""
    stage = config.train.stage
    if stage not in STAGES or stage == "ppo":
        raise ValueError(f"config key 'train.stage': {stage!r} is not a stage flaxgpt train runs here; expected one "
                         f"of {tuple(s for s in STAGES if s != 'ppo')} (ppo trains with flaxgpt.train.ppo_trainer)")
    if stage in PAIR_STAGES:
        if not config.prefs.data:
            raise ValueError(f"config key 'prefs.data': train.stage={stage} trains on comparisons; name the files "
                             "(`flaxgpt cai label`/`revise` output, hh-rlhf or multiple-choice JSONL)")
        return False
    if stage != "sft":
        return False
    if not config.data.document_mask:
        raise ValueError("config key 'data.document_mask': train.stage=sft packs whole conversations into rows and "
                         "needs attention kept inside each one; set data.document_mask=True")
    if "init_from" in config.train and not config.train.init_from:
        print("note: train.stage=sft with no train.init_from: fine-tuning a randomly initialised model")
    return True


def _check_conversations(sources: dict[str, tuple[str, float]], seq_len: int, report: bool) -> None:
    """Checks every SFT source carries loss masks; with ``report``, prints its trained tokens and how many
    conversations are cut to fit a row."""
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
        if report:
            print(line)


@dataclasses.dataclass
class _Run:
    """Everything ``train`` builds before its loop."""

    rdir: Path
    tokenizer: Any
    mcfg: ModelConfig
    model: GPT
    mesh: Any
    rules: tuple
    tx: Any
    sources: dict[str, tuple[str, float]]
    sft: bool
    pairs: Any  # flaxgpt.train.pairs.PairData for train.stage pm/dpo, else None
    host_batch: int
    data_iter: Any
    manager: Any
    state: TrainState
    shardings: Any
    start_step: int


def _prepare(config: ml_collections.ConfigDict) -> _Run:
    """Checks the config against the data, builds model, mesh, loader and state (restored if a checkpoint exists)."""
    sft = _check_stage(config)
    rdir = run_dir(config)
    rdir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(config.data.tokenizer)
    if config.model.vocab_size < tokenizer.vocab_size:
        raise ValueError(f"model.vocab_size={config.model.vocab_size} is smaller than tokenizer "
                         f"{tokenizer.name!r} ({tokenizer.vocab_size} ids); "
                         f"set model.vocab_size={tokenizer.vocab_size}")
    pair_stage = config.train.stage in PAIR_STAGES
    if not config.data.sources and not pair_stage:
        raise ValueError("config has no data.sources: set data.sources.NAME.path=DIR (a `flaxgpt tokenize` output)")
    sources = {}
    if not pair_stage:
        sources = expand_mixtures({name: (src.path, float(src.weight)) for name, src in config.data.sources.items()})
    _check_tokenizer(sources, tokenizer.metadata())
    if sft:
        _check_conversations(sources, config.data.seq_len, report=jax.process_index() == 0)

    mcfg = ModelConfig.from_config(config.model)
    model = GPT(mcfg)
    mesh = make_mesh(config.mesh)
    rules = logical_rules(config.mesh.rules)
    host_batch = _check_batch_layout(config, mesh)
    tx = make_optimizer(config.train)
    seq_len = config.data.seq_len
    if not pair_stage:
        data_iter = build_train_iterator(sources, seq_len=seq_len, batch_size=host_batch, seed=config.train.seed,
                                         eot_id=tokenizer.eot_id, prefetch=config.data.prefetch, sft=sft)
    else:  # comparisons: read below, where the DPO reference's first parameters can be built
        data_iter = None
    manager = ckpt.make_manager(rdir, keep=config.checkpoint.keep, async_save=config.checkpoint.async_save)
    restored, pairs, fresh = None, None, None
    try:
        if pair_stage:
            if needs_initial_params(config, rdir):  # the DPO reference: the run's first parameters
                fresh = initial_state(config, model, tx, mesh, rules)  # also the state, unless a checkpoint exists
            pairs = prepare_pairs(config, tokenizer, rdir, model=model, init_params=fresh[0].params if fresh else None,
                                  mesh=mesh, rules=rules)
            data_iter = build_pair_iterator(pairs.train, batch_size=host_batch, seed=config.train.seed)
        if config.run.resume and manager.all_steps():
            abstract, shardings = abstract_train_state(model, tx, mesh, rules, seq_len)
            restored = ckpt.restore_latest(manager, abstract, data_iter)
    except BaseException:
        manager.close()  # stop orbax's background threads before the error propagates
        raise
    if restored is not None:
        start_step, state = restored
        print(f"resumed from {rdir / 'checkpoints' / str(start_step)} at step {start_step}")
    else:
        start_step = 0
        try:
            state, shardings = fresh or initial_state(config, model, tx, mesh, rules)
        except BaseException:
            manager.close()
            raise
    if jax.process_index() == 0:
        (rdir / "config.json").write_text(to_json(config) + "\n")
    if pairs is not None:
        print(pairs.summary)
    return _Run(rdir, tokenizer, mcfg, model, mesh, rules, tx, sources, sft, pairs, host_batch, data_iter, manager,
                state, shardings, start_step)


def train(config: ml_collections.ConfigDict, *, stop_at: int | None = None, show_progress: bool = True) -> dict:
    """Trains ``config`` in its run directory; returns a summary (steps, final losses, paths).

    ``stop_at`` pauses after that step with a checkpoint, as a preemption would (tests use it).
    Raises NonFiniteLoss if the loss stops being finite.
    """
    run = _prepare(config)
    rdir, mcfg, mesh, rules, manager, data_iter = run.rdir, run.mcfg, run.mesh, run.rules, run.manager, run.data_iter
    state, start_step = run.state, run.start_step
    main_process = jax.process_index() == 0
    t = config.train
    seq_len = config.data.seq_len
    n_params = count_params(state.params)
    n_model = n_params - 2 * (mcfg.d_model + 1)  # without the value and reward heads
    print(f"model: {n_model:,} parameters (vocab padded to {mcfg.vocab_padded}); "
          f"GPT-2 count at vocab {mcfg.vocab_size}: {gpt2_param_count(mcfg):,}; "
          f"+{n_params - n_model} in value/reward heads")
    print(f"mesh: {dict(mesh.shape)} over {jax.device_count()} {jax.devices()[0].platform} device(s); "
          f"batch {t.batch_size} x {seq_len} tokens ({t.grad_accum} micro-batches)")

    keys = run.pairs.keys if run.pairs else BATCH_KEYS
    host_ndim = {k: 2 for k in BATCH_KEYS} if not run.pairs else {k: run.pairs.train[k].ndim for k in keys}
    batch_sh = {k: batch_sharding(mesh, host_ndim[k] + 1, leading=1) for k in keys}
    step_fn = compile_step(make_train_step(t.stage, run.model, run.tx, lr_schedule(t),
                                           document_mask=config.data.document_mask, config=config),
                           run.shardings, batch_sh, mesh, rules)
    validate = None  # params -> validation metrics
    if run.pairs:
        validate = make_pair_eval(run.pairs, run.model, config, mesh, rules)
    elif t.eval_every > 0:
        eval_fn = make_eval_fn(run.model, config, mesh, rules, run.shardings.params)
        host_eval = build_eval_batches(run.sources, seq_len=seq_len, batch_size=run.host_batch,
                                       eot_id=run.tokenizer.eot_id, max_batches=t.eval_batches, sft=run.sft)
        eval_sh = dict.fromkeys(BATCH_KEYS, batch_sharding(mesh, 2))
        eval_batches = {name: [put_batch({k: b[k] for k in BATCH_KEYS}, eval_sh) for b in batches]
                        for name, batches in host_eval.items()}  # fixed for the run: on devices once
        validate = lambda params: evaluate_sources(eval_fn, params, eval_batches)  # noqa: E731

    logger = MetricsLogger(rdir, resume_step=start_step) if main_process else None
    suite_eval = _suite_evaluator(config, run.tokenizer) if config.evals.every > 0 else None
    tokens_per_step = t.batch_size * seq_len * (2 if run.pairs else 1)
    flops_nano = flops_per_token_nanogpt(mcfg, seq_len, n_model)
    flops_maxtext = flops_per_token_maxtext(mcfg, seq_len)
    peak, peak_source = peak_flops_per_device()
    peak_total = peak * jax.device_count()
    tok_meta = run.tokenizer.metadata()
    config_dict = config.to_dict()

    def save(step: int, st: TrainState, force: bool = False) -> None:
        ckpt.save(manager, step, st, data_iter, config_dict, tok_meta, force=force)

    summary: dict[str, Any] = {"run_dir": str(rdir), "start_step": start_step, "status": "completed"}
    pending: tuple[int, dict, float] | None = None  # metrics of the step in flight, fetched one step late
    window: list[dict] = []
    window_t0 = time.perf_counter()
    compile_s = None
    step = start_step
    bar = tqdm(total=t.steps, initial=start_step, disable=not (show_progress and main_process), unit="step",
               dynamic_ncols=True, desc=config.run.name)

    def finish_pending() -> None:
        nonlocal pending
        if pending is None:
            return
        p_step, p_metrics, wait_s = pending
        pending = None
        m = {k: float(v) for k, v in jax.device_get(p_metrics).items()}
        m["data_wait_s"] = wait_s
        if not math.isfinite(m["loss"]):
            manager.wait_until_finished()
            last = manager.latest_step()
            raise NonFiniteLoss(f"loss is {m['loss']} at step {p_step} (grad norm {m['grad_norm']:.3g}); "
                                f"stopped without saving. Last good checkpoint: "
                                f"{rdir / 'checkpoints' / str(last) if last is not None else 'none'}. "
                                f"Try a lower train.lr, more train.warmup_steps or train.grad_clip.")
        window.append(m)

    try:
        with _StopFlag() as stop:
            while step < t.steps:
                t_wait = time.perf_counter()
                host = next(data_iter)
                wait_s = time.perf_counter() - t_wait
                batch = put_batch(_micro_batches({k: host[k] for k in keys}, t.grad_accum), batch_sh)
                if compile_s is None:
                    t_c = time.perf_counter()
                    compiled = step_fn.lower(state, batch).compile()
                    compile_s = time.perf_counter() - t_c
                    print(f"compiled train step in {compile_s:.1f} s")
                    summary["compile_s"] = compile_s
                    window_t0 = time.perf_counter()
                state, metrics = compiled(state, batch)
                finish_pending()  # the previous step's metrics, while this one runs
                step += 1
                pending = (step, metrics, wait_s)
                bar.update(1)

                boundary = step % t.log_every == 0 or step == t.steps
                stopping = stop.requested or ("stop_at" if step == stop_at else None)  # read once: no race
                saving = step % config.checkpoint.every == 0 or step == t.steps or stopping
                if boundary or saving:
                    finish_pending()
                if boundary and window:
                    record = _train_record(window, time.perf_counter() - window_t0, tokens_per_step,
                                           flops_nano, flops_maxtext, peak_total)
                    window, window_t0 = [], time.perf_counter()
                    bar.set_postfix_str(_postfix(record), refresh=False)
                    if logger:
                        logger.write(step, "train", record)
                    summary["loss"] = record["loss"]
                if validate and (step % t.eval_every == 0 or step == t.steps):
                    ev = validate(state.params)
                    if ev:
                        bar.write(f"step {step}: " + "  ".join(f"{k} {v:.4g}" for k, v in ev.items()))
                        if logger:
                            logger.write(step, "eval", ev)
                        summary.update(ev)
                    window_t0 = time.perf_counter()  # evaluation time is not training throughput
                if suite_eval and (step % config.evals.every == 0 or step == t.steps):
                    finish_pending()
                    record = suite_eval(state.params, step)
                    bar.write(f"step {step}: " + "  ".join(f"{k} {v:.4g}" for k, v in record.items()))
                    if logger:
                        logger.write(step, "suite", record)
                    window_t0 = time.perf_counter()
                if saving:
                    if step == t.steps and t.stage == "pm" and config.pm.center:
                        state, offset = center_state(run.pairs, run.model, state, mesh, rules)
                        if logger:
                            logger.write(step, "pm", {"reward_offset": offset})
                    save(step, state, force=True)
                if stopping:
                    summary["status"] = f"stopped ({stopping})"
                    break
        finish_pending()
    finally:
        bar.close()
        manager.wait_until_finished()
        manager.close()
        if logger:
            logger.close()
    summary.update(step=step, peak_flops=peak, peak_source=peak_source)
    if main_process:
        plot = plot_loss(rdir, title=f"{config.run.name}: {n_model / 1e6:.1f}M parameters")
        summary["plot"] = str(plot) if plot else None
    print(f"{summary['status']} at step {step}; run directory: {rdir}")
    return summary


def make_eval_fn(model: GPT, config, mesh, rules, param_shardings):
    """``eval_fn(params, batch) -> {'loss_sum', 'weights'}`` for one [b, T] batch, jitted on ``mesh``."""
    eval_step = make_eval_step(model, document_mask=config.data.document_mask)
    jitted = jax.jit(eval_step, in_shardings=(param_shardings, batch_sharding(mesh, 2)))

    def run(params, batch):
        with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
            return jitted(params, batch)

    return run


def _suite_evaluator(config: ml_collections.ConfigDict, tokenizer: Any):
    """``fn(params, step) -> {suite/metric: value}``: the ``evals.suites`` on the current parameters."""
    from flaxgpt.eval.runner import evaluate_params, resolve_suites
    from flaxgpt.eval.suite import context_from_config

    suites = resolve_suites(config.evals.suites)
    ctx = context_from_config(config.evals)

    def run(params: Any, step: int) -> dict[str, float]:
        results = evaluate_params(params, config, suites, ctx, step=step, tokenizer=tokenizer)
        return {f"{name}/{k}": float(v) for name, r in results.items() for k, v in r.metrics.items()
                if isinstance(v, int | float)}

    return run


def evaluate_sources(eval_fn, params, eval_batches: dict[str, list]) -> dict[str, float]:
    """Validation loss and perplexity per source and over all sources (token-weighted)."""
    out, total_loss, total_w = {}, 0.0, 0.0
    for name, batches in eval_batches.items():
        loss, w = 0.0, 0.0
        for b in batches:
            r = jax.device_get(eval_fn(params, b))
            loss += float(r["loss_sum"])
            w += float(r["weights"])
        if w:
            out[f"val_loss/{name}"] = loss / w
            total_loss, total_w = total_loss + loss, total_w + w
    if total_w:
        out["val_loss"] = total_loss / total_w
        out["val_ppl"] = math.exp(min(out["val_loss"], 50.0))
    return out


def _train_record(window: list[dict], seconds: float, tokens_per_step: int, flops_nano: float,
                  flops_maxtext: float, peak_total: float) -> dict[str, float]:
    n = len(window)
    tok_s = n * tokens_per_step / seconds
    rec = {k: sum(m[k] for m in window) / n for k in window[0] if k not in ("lr", "grad_norm", "data_wait_s",
                                                                           "tokens")}
    rec.update({
        "lr": window[-1]["lr"],
        "grad_norm": window[-1]["grad_norm"],
        "tokens_per_s": tok_s,
        "mfu_nanogpt": tok_s * flops_nano / peak_total,
        "mfu_maxtext": tok_s * flops_maxtext / peak_total,
        "data_wait_ms": 1000 * sum(m["data_wait_s"] for m in window) / n,
        "step_ms": 1000 * seconds / n,
    })
    return rec


def _postfix(r: dict[str, float]) -> str:
    return (f"loss {r['loss']:.3f} lr {r['lr']:.2e} gnorm {r['grad_norm']:.2f} tok/s {r['tokens_per_s']:,.0f} "
            f"mfu {100 * r['mfu_nanogpt']:.1f}% wait {r['data_wait_ms']:.1f}ms")


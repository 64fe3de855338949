"""The training loop, one for every stage: the place with side effects (data, devices, checkpoints, logs, signals).

``train(ctx)`` takes a built ``RunContext`` (``flaxgpt.train.context``) and runs its stage: the stage's data
source hands out one ``Round`` of batches per step, the compiled step runs on each, hooks run between steps
(validation, evaluation suites, the stage's own), and checkpoints save asynchronously. It resumes from the run
directory's latest complete checkpoint, stops cleanly on SIGINT/SIGTERM (saving first) or on a non-finite loss
(keeping the last good checkpoint). Metrics of a one-batch step are read one step late, so the host never waits
for the device to finish a step before dispatching the next.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from flaxgpt.model.gpt import count_params, gpt2_param_count
from flaxgpt.train.context import RunContext
from flaxgpt.train.logger import plot_loss
from flaxgpt.train.mfu import flops_per_token_maxtext, flops_per_token_nanogpt, peak_flops_per_device
from flaxgpt.train.sharding import put_batch
from flaxgpt.train.stages.base import DataSource, Hook

# Metrics that describe the last step of a window rather than its average.
_LAST_OF_WINDOW = ("lr", "grad_norm")


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


def _hooks(ctx: RunContext, data: DataSource) -> list[Hook]:
    """Validation every ``train.eval_every`` steps, then the services' hooks (suites), then the stage's own."""
    hooks = []
    validate = ctx.stage.make_validation(ctx, data)
    if validate is not None:
        hooks.append(Hook("eval", lambda state, step: (state, validate(state.params)),
                          every=ctx.config.train.eval_every))
    if ctx.services.hooks is not None:
        hooks += ctx.services.hooks(ctx)
    return hooks + ctx.stage.hooks(ctx, data)


def _prepare(ctx: RunContext) -> tuple[DataSource, int, Any, list[Hook]]:
    """(data source, start step, state, hooks): restored from the latest checkpoint, else the initial state."""
    data = ctx.stage.make_data(ctx)
    restored = ctx.restore(data.checkpoint)
    if restored is not None:
        start, state = restored
        data.restore(start)
        print(f"resumed from {ctx.run_dir / 'checkpoints' / str(start)} at step {start}")
    else:
        start, state = 0, ctx.initial_state()[0]
    return data, start, state, _hooks(ctx, data)


def _describe(ctx: RunContext, n_params: int) -> None:
    mcfg, t = ctx.model_cfg, ctx.config.train
    n_model = n_params - 2 * (mcfg.d_model + 1)  # without the value and reward heads
    print(f"model: {n_model:,} parameters (vocab padded to {mcfg.vocab_padded}); "
          f"GPT-2 count at vocab {mcfg.vocab_size}: {gpt2_param_count(mcfg):,}; "
          f"+{n_params - n_model} in value/reward heads")
    print(f"mesh: {dict(ctx.mesh.shape)} over {jax.device_count()} {jax.devices()[0].platform} device(s); "
          f"batch {t.batch_size} x {ctx.config.data.seq_len} tokens ({t.grad_accum} micro-batches)")


def train(ctx: RunContext, *, stop_at: int | None = None, show_progress: bool = True) -> dict:
    """Trains ``ctx``'s stage in its run directory; returns a summary (steps, final losses, paths). Closes ``ctx``.

    ``stop_at`` pauses after that step with a checkpoint, as a preemption would (tests use it).
    Raises NonFiniteLoss if the loss stops being finite.
    """
    try:
        data, start_step, state, hooks = _prepare(ctx)
    except BaseException:
        ctx.close()  # stop orbax's background threads before the error propagates
        raise
    ctx.start_logging(start_step)
    config, t = ctx.config, ctx.config.train
    seq_len = config.data.seq_len
    n_params = count_params(state.params)
    _describe(ctx, n_params)
    if data.summary:
        print(data.summary)
    n_model = n_params - 2 * (ctx.model_cfg.d_model + 1)
    flops = (flops_per_token_nanogpt(ctx.model_cfg, seq_len, n_model), flops_per_token_maxtext(ctx.model_cfg, seq_len))
    peak, peak_source = peak_flops_per_device()
    throughput = _Throughput(data.rows_per_step * seq_len, flops, peak * jax.device_count())
    step_fn = ctx.stage.make_step(ctx.model, ctx.tx, ctx.schedule, config)

    summary: dict[str, Any] = {"run_dir": str(ctx.run_dir), "start_step": start_step, "status": "completed"}
    pending: tuple[int, list, dict, float] | None = None  # the step in flight: its metrics are read one step late
    window: list[dict] = []
    compiled = None
    step = start_step
    bar = tqdm(total=t.steps, initial=start_step, disable=not (show_progress and ctx.main_process), unit=data.unit,
               dynamic_ncols=True, desc=config.run.name)

    def finish_pending() -> None:
        nonlocal pending
        if pending is None:
            return
        p_step, metrics, info, wait_s = pending
        pending = None
        fetched = jax.device_get(metrics)
        m = {k: float(np.mean([x[k] for x in fetched])) for k in fetched[0]}
        if not math.isfinite(m["loss"]):
            raise NonFiniteLoss(_non_finite_message(ctx, m, p_step, start_step))
        window.append({**m, **info, "data_wait_s": wait_s})

    try:
        with _StopFlag() as stop:
            while step < t.steps:
                t_wait = time.perf_counter()
                rnd = data.next(state)
                wait_s = time.perf_counter() - t_wait
                metrics = []
                for host in rnd.batches:
                    if compiled is None:
                        shardings = {k: ctx.batch_sharding(v.ndim, leading=1) for k, v in host.items()}
                    batch = put_batch(host, shardings)
                    if compiled is None:
                        t_c = time.perf_counter()
                        compiled = ctx.compile_step(step_fn, shardings).lower(state, batch).compile()
                        summary["compile_s"] = time.perf_counter() - t_c
                        print(f"compiled train step in {summary['compile_s']:.1f} s")
                        throughput.restart()
                    state, m = compiled(state, batch)
                    metrics.append(m)
                finish_pending()  # the previous step's metrics, while this one runs
                step += 1
                pending = (step, metrics, rnd.info, wait_s)
                bar.update(1)

                boundary = step % t.log_every == 0 or step == t.steps
                stopping = stop.requested or ("stop_at" if step == stop_at else None)  # read once: no race
                saving = step % config.checkpoint.every == 0 or step == t.steps or stopping
                due = [h for h in hooks if h.due(step, step == t.steps)]
                if boundary or saving or due:
                    finish_pending()
                if boundary and window:
                    record = throughput.record(window)
                    window = []
                    bar.set_postfix_str(_postfix(record), refresh=False)
                    ctx.log(step, "train", record)
                    summary.update({k: record[k] for k in ("loss", *rnd.info)})
                for hook in due:
                    state, record = hook.run(state, step)
                    if record:
                        bar.write(f"step {step}: " + "  ".join(f"{k} {v:.4g}" for k, v in record.items()))
                        ctx.log(step, hook.kind, record)
                        summary.update(record)
                    throughput.restart()  # hook time is not training throughput
                if saving:
                    ctx.save(step, state, data.checkpoint)
                    data.save(step)
                if stopping:
                    summary["status"] = f"stopped ({stopping})"
                    summary["signal"] = stop.requested
                    break
        finish_pending()
    finally:
        bar.close()
        ctx.close()
    summary.update(step=step, peak_flops=peak, peak_source=peak_source)
    if ctx.main_process:
        plot = plot_loss(ctx.run_dir, title=f"{config.run.name}: {n_model / 1e6:.1f}M parameters")
        summary["plot"] = str(plot) if plot else None
    data.finish(summary)
    print(f"{summary['status']} at step {step}; run directory: {ctx.run_dir}")
    return summary


def _non_finite_message(ctx: RunContext, m: dict[str, float], step: int, start_step: int) -> str:
    """Why the run stopped at a NaN/inf loss, naming the latest checkpoint without vouching for it: a NaN soon
    after a resume may come from the checkpoint itself."""
    ctx.manager.wait_until_finished()
    last = ctx.manager.latest_step()
    latest = ctx.run_dir / "checkpoints" / str(last) if last is not None else None
    text = (f"loss is {m['loss']} at step {step} (grad norm {m['grad_norm']:.3g}); stopped without saving. "
            f"Latest checkpoint: {latest or 'none'}, saved before the loss went non-finite. ")
    if ctx.resumed_from is not None and step - start_step <= 2 * ctx.config.train.log_every:
        text += (f"This run resumed from {ctx.resumed_from} only {step - start_step} step(s) earlier: that "
                 "checkpoint may hold bad values; move it aside to resume from the one before. ")
    return text + "Try a lower train.lr, more train.warmup_steps or train.grad_clip."


class _Throughput:
    """Turns a window of per-step metrics into a train record with tokens/s, MFU and data wait."""

    def __init__(self, tokens_per_step: int, flops_per_token: tuple[float, float], peak_total: float):
        self.tokens_per_step, self.flops, self.peak_total = tokens_per_step, flops_per_token, peak_total
        self.t0 = time.perf_counter()

    def restart(self) -> None:
        self.t0 = time.perf_counter()

    def record(self, window: list[dict]) -> dict[str, float]:
        seconds = time.perf_counter() - self.t0
        self.restart()
        n = len(window)
        tok_s = n * self.tokens_per_step / seconds
        rec = {k: sum(m[k] for m in window) / n for k in window[0]
               if k not in (*_LAST_OF_WINDOW, "data_wait_s", "tokens")}
        rec.update({k: window[-1][k] for k in _LAST_OF_WINDOW if k in window[-1]})
        rec.update({
            "tokens_per_s": tok_s,
            "mfu_nanogpt": tok_s * self.flops[0] / self.peak_total,
            "mfu_maxtext": tok_s * self.flops[1] / self.peak_total,
            "data_wait_ms": 1000 * sum(m["data_wait_s"] for m in window) / n,
            "step_ms": 1000 * seconds / n,
        })
        return rec


def _postfix(r: dict[str, float]) -> str:
    return (f"loss {r['loss']:.3f} lr {r['lr']:.2e} gnorm {r['grad_norm']:.2f} tok/s {r['tokens_per_s']:,.0f} "
            f"mfu {100 * r['mfu_nanogpt']:.1f}% wait {r['data_wait_ms']:.1f}ms")

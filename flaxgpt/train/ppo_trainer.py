"""PPO against a preference model (``train.stage=ppo``, RL-CAI's last stage): the loop with side effects.

One training step (``train.steps`` of them) is one rollout and its updates:

1. ``ppo.rollout_batch`` prompts (a fresh permutation of ``ppo.prompts`` each pass, from the seed and
   the step, so a resumed run sees the same prompts) are answered by the policy with the jitted
   KV-cache sampler of flaxgpt/generate.py at ``ppo.temperature``, at most ``ppo.response_len`` tokens,
   ending at ``<|end|>``.
2. One forward each of the policy (log-probs, values), the frozen reference (log-probs) and the
   preference model (its reward at the end-of-response token) scores the rollout; logits are divided
   by the sampling temperature in both policy and reference, as sampling did.
3. Per-token rewards: −kl_coef·KL(policy‖reference) on every response token, plus the PM score on the
   end-of-response token (minus ``ppo.missing_eos_penalty`` for a response that never ended); GAE
   (γ, λ) gives advantages (whitened over the rollout) and returns.
4. ``ppo.epochs`` passes of ``ppo.minibatch``-row updates with the clipped policy and value losses
   (``flaxgpt.train.pref_steps.make_ppo_step``, compiled by the one sharding helper, state donated).

The KL coefficient is fixed, or adapted toward ``ppo.kl_target`` (old TRL's controller). A run
directory gets checkpoints (resumable, the KL coefficient with them), ``metrics.jsonl``/TensorBoard
(reward, KL, entropy, clip fraction, value explained variance, ...), ``rollouts.jsonl`` (a few samples
per log step) and ``loss.png``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm import tqdm

from flaxgpt.config import run_dir, to_json
from flaxgpt.data.chat_template import END
from flaxgpt.data.preferences import encode_prompt
from flaxgpt.data.tokenizer import check_compatible, load_tokenizer
from flaxgpt.infer.generator import Generator, SamplingParams
from flaxgpt.model.gpt import GPT, ModelConfig
from flaxgpt.train import checkpoint as ckpt
from flaxgpt.train import rl
from flaxgpt.train.logger import MetricsLogger, plot_loss, plot_ppo
from flaxgpt.train.optim import lr_schedule, make_optimizer
from flaxgpt.train.pref_steps import PPO_KEYS, make_scorer
from flaxgpt.train.sharding import batch_sharding, compile_step, logical_rules, make_mesh, put_batch
from flaxgpt.train.state import abstract_train_state, initial_state
from flaxgpt.train.steps import make_train_step

SAMPLES_FILE = "rollouts.jsonl"
KL_FILE = "kl_coef.json"


@dataclasses.dataclass
class Frozen:
    """A frozen model the rollout scores with: the reference policy or the preference model."""

    model: GPT
    params: Any
    where: str


def _load_frozen(spec: str, what: str, key: str, mesh, tokenizer) -> Frozen:
    from flaxgpt.runs.rundir import load_run

    if not spec:
        raise ValueError(f"config key '{key}': PPO needs the {what} (a run directory)")
    if not Path(spec).expanduser().is_dir():
        raise FileNotFoundError(f"config key '{key}': {spec} is not a run directory")
    run = load_run(Path(spec).expanduser(), mesh=mesh)
    check_compatible(run.tokenizer.metadata(), tokenizer.metadata(), f"{key} {spec} vs data.tokenizer")
    return Frozen(GPT(run.model_cfg), run.params, f"{spec} (step {run.step})")


def read_prompt_ids(config: ml_collections.ConfigDict, tokenizer) -> list[list[int]]:
    """``ppo.prompts`` as chat-template token ids ending in ``<|assistant|>``, kept to fit a response."""
    from flaxgpt.cai.prompts import load_prompts

    paths = [p.strip() for p in config.ppo.prompts.split(",") if p.strip()]
    if not paths:
        raise ValueError("config key 'ppo.prompts': name prompt files (comma-separated)")
    room = config.data.seq_len - config.ppo.response_len - 1
    if room < 4:
        raise ValueError(f"data.seq_len={config.data.seq_len} leaves no room for prompts next to "
                         f"ppo.response_len={config.ppo.response_len}")
    out = []
    for prompt in load_prompts(paths, shuffle=False):
        ids = encode_prompt(tuple(prompt.messages), tokenizer)
        out.append(ids[-room:])  # the last tokens: the final user turn and the assistant tag
    if not out:
        raise ValueError(f"ppo.prompts: no prompts in {paths}")
    return out


def _rollout_prompts(prompts: list[list[int]], step: int, n: int, seed: int) -> list[int]:
    """Indices of the ``n`` prompts of rollout ``step``: consecutive slices of a per-pass permutation."""
    perms: dict[int, np.ndarray] = {}
    out = []
    for i in range(step * n, (step + 1) * n):
        epoch, j = divmod(i, len(prompts))
        if epoch not in perms:
            perms[epoch] = np.random.default_rng([seed, epoch]).permutation(len(prompts))
        out.append(int(perms[epoch][j]))
    return out


def _assemble(prompts: list[list[int]], completions, end_id: int, seq_len: int) -> dict[str, np.ndarray]:
    """Rollout rows: prompt + response (+ <|end|> if it ended) right-padded to seq_len; mask, last, ended."""
    n = len(prompts)
    tokens = np.zeros((n, seq_len), np.int32)
    mask = np.zeros((n, seq_len), np.float32)
    last = np.zeros((n,), np.int32)
    ended = np.zeros((n,), bool)
    for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        resp = list(c.tokens)
        ended[i] = c.finish_reason == "stop"
        if ended[i]:
            resp.append(end_id)  # the stop token is not in Completion.tokens
        if not resp:  # nothing generated at all: score the prompt's last token as an empty response
            resp = [end_id]
        row = (p + resp)[:seq_len]
        tokens[i, : len(row)] = row
        mask[i, len(p): len(row)] = 1.0
        last[i] = len(row) - 1
    return {"tokens": tokens, "mask": mask, "last": last, "ended": ended}


def train_ppo(config: ml_collections.ConfigDict, *, stop_at: int | None = None, show_progress: bool = True) -> dict:
    """Runs PPO in ``config``'s run directory (resuming from its latest checkpoint); returns a summary."""
    t, p = config.train, config.ppo
    rdir = run_dir(config)
    rdir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(config.data.tokenizer)
    end_id = tokenizer.special_ids.get(END, tokenizer.eot_id)
    mcfg = ModelConfig.from_config(config.model)
    model = GPT(mcfg)
    mesh = make_mesh(config.mesh)
    rules = logical_rules(config.mesh.rules)
    data_parallel = mesh.shape["data"] * mesh.shape["fsdp"]
    if p.rollout_batch % p.minibatch or p.minibatch % data_parallel:
        raise ValueError(f"ppo.rollout_batch={p.rollout_batch} must be a multiple of ppo.minibatch={p.minibatch}, "
                         f"itself a multiple of the data-parallel devices ({data_parallel})")
    updates_per_step = p.epochs * (p.rollout_batch // p.minibatch)
    opt_cfg = ml_collections.ConfigDict(t.to_dict())
    opt_cfg.steps = t.steps * updates_per_step  # the schedule counts optimizer updates
    opt_cfg.warmup_steps = t.warmup_steps * updates_per_step
    tx = make_optimizer(opt_cfg)
    prompts = read_prompt_ids(config, tokenizer)

    manager = ckpt.make_manager(rdir, keep=config.checkpoint.keep, async_save=config.checkpoint.async_save)
    try:
        reference = _load_frozen(p.ref_from or t.init_from, "reference policy", "ppo.ref_from", mesh, tokenizer)
        pm = _load_frozen(p.reward_from, "preference model", "ppo.reward_from", mesh, tokenizer)
        restored = None
        if config.run.resume and manager.all_steps():
            abstract, shardings = abstract_train_state(model, tx, mesh, rules, config.data.seq_len)
            restored = ckpt.restore_latest(manager, abstract, None)
        if restored is not None:
            start_step, state = restored
            print(f"resumed from {rdir / 'checkpoints' / str(start_step)} at step {start_step}")
        else:
            start_step = 0
            state, shardings = initial_state(config, model, tx, mesh, rules)
    except BaseException:
        manager.close()
        raise
    kl_path = rdir / KL_FILE
    kl_coef = float(p.kl_coef)
    if start_step and kl_path.exists():
        kl_coef = json.loads(kl_path.read_text()).get(str(start_step), kl_coef)
    (rdir / "config.json").write_text(to_json(config) + "\n")
    print(f"ppo: {len(prompts)} prompts; reference {reference.where}; preference model {pm.where}; "
          f"{updates_per_step} updates of {p.minibatch} rows per rollout of {p.rollout_batch}")

    sh2, sh1 = batch_sharding(mesh, 2), batch_sharding(mesh, 1)
    policy_score = make_scorer(model, p.temperature)
    ref_score = make_scorer(reference.model, p.temperature)
    pm_score = make_scorer(pm.model)

    @jax.jit
    def score_rollout(params, ref_params, pm_params, tokens, mask, last, ended, kl_coef):
        pol = policy_score(params, tokens, mask, last)
        ref = ref_score(ref_params, tokens, mask, last)
        raw = pm_score(pm_params, tokens, mask, last)["reward"]
        score = raw - jnp.where(ended, 0.0, p.missing_eos_penalty)
        rewards, kl = rl.ppo_rewards(score, pol["logp"], ref["logp"], mask, last, kl_coef, p.kl_estimator)
        if p.whiten_rewards:
            rewards = rl.whiten(rewards, mask, shift_mean=False)
        adv, returns = rl.gae(rewards, pol["values"], mask, p.gamma, p.lam)
        adv = rl.whiten(adv, mask)
        return {"old_logp": pol["logp"], "old_values": pol["values"], "advantages": adv, "returns": returns,
                "reward": raw, "score": score, "kl": jnp.sum(kl * mask, axis=-1),
                "explained_variance": rl.explained_variance(pol["values"], returns, mask)}

    minibatch_sh = dict.fromkeys(PPO_KEYS, batch_sharding(mesh, 3, leading=1))
    step_fn = compile_step(make_train_step("ppo", model, tx, lr_schedule(opt_cfg), config=config), shardings,
                           minibatch_sh, mesh, rules)
    gen = Generator(mcfg, state.params, tokenizer, max_len=config.data.seq_len, mesh=mesh, rules=rules)
    logger = MetricsLogger(rdir, resume_step=start_step)
    sampling = SamplingParams(temperature=p.temperature, stop_token_ids=(end_id,))
    summary: dict[str, Any] = {"run_dir": str(rdir), "start_step": start_step, "status": "completed"}
    step = start_step
    bar = tqdm(total=t.steps, initial=start_step, disable=not show_progress, unit="rollout", dynamic_ncols=True,
               desc=config.run.name)
    try:
        while step < t.steps:
            t0 = time.perf_counter()
            idx = _rollout_prompts(prompts, step, p.rollout_batch, t.seed)
            batch_prompts = [prompts[i] for i in idx]
            gen.set_params(state.params)
            samp = [dataclasses.replace(sampling, seed=t.seed * 1_000_003 + step * p.rollout_batch + i)
                    for i in range(len(batch_prompts))]
            completions = gen.generate(batch_prompts, samp, max_new_tokens=p.response_len)
            roll = _assemble(batch_prompts, completions, end_id, config.data.seq_len)
            gen_s = time.perf_counter() - t0
            with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
                stats = score_rollout(state.params, reference.params, pm.params, jax.device_put(roll["tokens"], sh2),
                                      jax.device_put(roll["mask"], sh2), jax.device_put(roll["last"], sh1),
                                      jax.device_put(roll["ended"], sh1), jnp.float32(kl_coef))
            stats = jax.device_get(stats)
            rows = {"tokens": roll["tokens"], "mask": roll["mask"],
                    **{k: np.asarray(stats[k]) for k in PPO_KEYS[2:]}}
            update_metrics = []
            rng = np.random.default_rng([t.seed, step, 7])
            for _ in range(p.epochs):
                order = rng.permutation(p.rollout_batch)
                for s in range(0, p.rollout_batch, p.minibatch):
                    sel = order[s: s + p.minibatch]
                    mb = put_batch({k: v[sel][None] for k, v in rows.items()}, minibatch_sh)
                    state, m = step_fn(state, mb)
                    update_metrics.append(m)
            update_metrics = jax.device_get(update_metrics)
            step += 1
            mean_kl = float(np.mean(stats["kl"]))
            record = {k: float(np.mean([m[k] for m in update_metrics])) for k in update_metrics[0]}
            record.update(reward=float(np.mean(stats["reward"])), score=float(np.mean(stats["score"])),
                          kl=mean_kl, kl_coef=kl_coef, explained_variance=float(stats["explained_variance"]),
                          response_len=float(roll["mask"].sum(-1).mean()), ended=float(roll["ended"].mean()),
                          rollout_s=gen_s, step_s=time.perf_counter() - t0)
            if p.kl_target > 0:
                kl_coef = float(rl.adaptive_kl_coef(kl_coef, mean_kl, p.kl_target, p.rollout_batch, p.kl_horizon))
            if not np.isfinite(record["loss"]):
                raise FloatingPointError(f"PPO loss is {record['loss']} at rollout {step}; try a lower train.lr")
            logger.write(step, "train", record)
            bar.update(1)
            bar.set_postfix_str(f"reward {record['reward']:+.3f} kl {mean_kl:.3f} clip {record['clipfrac']:.2f}",
                                refresh=False)
            if step % t.log_every == 0 or step == t.steps:
                _write_samples(rdir, step, tokenizer, batch_prompts, completions, stats)
            if step % config.checkpoint.every == 0 or step == t.steps or step == stop_at:
                ckpt.save(manager, step, state, None, config.to_dict(), tokenizer.metadata(), force=True)
                saved = json.loads(kl_path.read_text()) if kl_path.exists() else {}
                kl_path.write_text(json.dumps({**saved, str(step): kl_coef}))
            summary.update(reward=record["reward"], kl=mean_kl)
            if step == stop_at:
                summary["status"] = "stopped (stop_at)"
                break
    finally:
        bar.close()
        manager.wait_until_finished()
        manager.close()
        logger.close()
    summary["step"] = step
    plot_loss(rdir, title=f"{config.run.name}: PPO loss")
    plot = plot_ppo(rdir, title=f"{config.run.name}: PPO against {pm.where}")
    summary["plot"] = str(plot) if plot else None
    print(f"{summary['status']} at step {step}; run directory: {rdir}")
    return summary


def _write_samples(rdir: Path, step: int, tokenizer, prompts, completions, stats, n: int = 4) -> None:
    with open(rdir / SAMPLES_FILE, "a", encoding="utf-8") as f:
        for i in range(min(n, len(prompts))):
            f.write(json.dumps({"step": step, "prompt": tokenizer.decode(prompts[i]),
                                "response": completions[i].text, "reward": float(stats["reward"][i]),
                                "kl": float(stats["kl"][i])}, ensure_ascii=False) + "\n")

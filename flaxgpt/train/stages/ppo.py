"""PPO against a preference model (``train.stage=ppo``, RL-CAI's last stage): a rollout data source and the
clipped policy/value step.

One training step is one rollout and its updates (``RolloutSource.next``):

1. ``ppo.rollout_batch`` prompts (a fresh permutation of ``ppo.prompts`` each pass, from the seed and the step,
   so a resumed run sees the same prompts) are answered by the policy with the run's decoder (the jitted KV-cache
   sampler of ``flaxgpt.infer``, through ``Services.make_sampler``) at ``ppo.temperature``, at most
   ``ppo.response_len`` tokens, ending at ``<|end|>``.
2. One forward each of the policy (log-probs, values), the frozen reference (log-probs) and the preference model
   (its reward at the end-of-response token) scores the rollout; logits are divided by the sampling temperature
   in both policy and reference, as sampling did.
3. Per-token rewards: -kl_coef x KL(policy || reference) on every response token, plus the PM score on the
   end-of-response token (minus ``ppo.missing_eos_penalty`` for a response that never ended); GAE (gamma,
   lambda) gives advantages (whitened over the rollout) and returns.
4. ``ppo.epochs`` passes of ``ppo.minibatch``-row updates with the clipped policy and value losses.

The KL coefficient is fixed, or adapted toward ``ppo.kl_target`` (old TRL's controller); it is saved next to
each checkpoint (``kl_coef.json``), so a resumed run continues with it. Besides the loop's metrics the run gets
``rollouts.jsonl`` (a few samples per log step) and ``ppo.png``.

Rollout batches (``KEYS``): ``tokens`` int32 [A,b,T]; ``mask``, ``old_logp``, ``old_values``, ``advantages``,
``returns`` float32 [A,b,T], aligned to token positions (``flaxgpt.train.rl``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flaxgpt.data.chat_template import END
from flaxgpt.data.preferences import encode_prompt
from flaxgpt.data.prompts import load_prompts
from flaxgpt.train import rl
from flaxgpt.train.logger import plot_ppo
from flaxgpt.train.scoring import make_scorer
from flaxgpt.train.stages.base import DataSource, Hook, Round, RunContext, Stage
from flaxgpt.train.steps import make_step

KEYS = ("tokens", "mask", "old_logp", "old_values", "advantages", "returns")
SAMPLES_FILE = "rollouts.jsonl"
KL_FILE = "kl_coef.json"


def _logits_values(module: Any, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = module.hidden(tokens)
    return module.logits(h), module.value(h)


def make_ppo_step(model: Any, tx: Any, schedule: Any, config: Any) -> Any:
    """The PPO update on a rollout minibatch (``KEYS``): pg_loss + vf_coef x vf_loss, token means.

    Logits are divided by the sampling temperature (as the rollout's old_logp were). The value of position t is
    ``model.value`` at t-1. Metrics: loss, pg_loss, vf_loss, clipfrac, approx_kl, entropy, grad_norm, lr.
    """
    p, vocab = config.ppo, model.cfg.vocab_size

    def terms(params, micro, rng):
        tokens, mask = micro["tokens"], micro["mask"].astype(jnp.float32)
        logits, v = model.apply({"params": params}, tokens, method=_logits_values)
        logp = rl.token_logprobs(logits, tokens, vocab, p.temperature)
        out = rl.ppo_losses(logp, micro["old_logp"], rl.shift_right(v), micro["old_values"], micro["advantages"],
                            micro["returns"], mask, clip=p.clip, vf_clip=p.vf_clip)
        # Masked means times this micro-batch's token count are token sums: micro-batches then weigh by tokens.
        n = jnp.sum(mask)
        sums = {k: jax.lax.stop_gradient(x * n) for k, x in out.items()}
        sums["entropy"] = jnp.sum(jax.lax.stop_gradient(rl.entropy(logits, vocab, p.temperature)) * mask)
        sums["tokens"] = n
        return (out["pg_loss"] + p.vf_coef * out["vf_loss"]) * n, sums

    def metrics(loss_sum, sums):
        n = jnp.maximum(sums["tokens"], 1.0)
        return {"loss": loss_sum / n, **{k: v / n for k, v in sums.items() if k != "tokens"}}

    return make_step(terms, tx, schedule, denominator="tokens", metrics=metrics)


def read_prompt_ids(config: Any, tokenizer: Any) -> list[list[int]]:
    """``ppo.prompts`` as chat-template token ids ending in ``<|assistant|>``, kept to fit a response."""
    paths = [p.strip() for p in config.ppo.prompts.split(",") if p.strip()]
    if not paths:
        raise ValueError("config key 'ppo.prompts': name prompt files (comma-separated)")
    room = config.data.seq_len - config.ppo.response_len - 1
    if room < 4:
        raise ValueError(f"data.seq_len={config.data.seq_len} leaves no room for prompts next to "
                         f"ppo.response_len={config.ppo.response_len}")
    out = [encode_prompt(tuple(prompt.messages), tokenizer)[-room:]  # the final user turn and the assistant tag
           for prompt in load_prompts(paths, shuffle=False)]
    if not out:
        raise ValueError(f"ppo.prompts: no prompts in {paths}")
    return out


def rollout_prompts(n_prompts: int, step: int, n: int, seed: int) -> list[int]:
    """Indices of the ``n`` prompts of rollout ``step``: consecutive slices of a per-pass permutation."""
    perms: dict[int, np.ndarray] = {}
    out = []
    for i in range(step * n, (step + 1) * n):
        epoch, j = divmod(i, n_prompts)
        if epoch not in perms:
            perms[epoch] = np.random.default_rng([seed, epoch]).permutation(n_prompts)
        out.append(int(perms[epoch][j]))
    return out


def assemble(prompts: list[list[int]], samples: list[Any], end_id: int, seq_len: int) -> dict[str, np.ndarray]:
    """Rollout rows: prompt + response (+ <|end|> if it ended) right-padded to seq_len; mask, last, ended."""
    n = len(prompts)
    tokens = np.zeros((n, seq_len), np.int32)
    mask = np.zeros((n, seq_len), np.float32)
    last = np.zeros((n,), np.int32)
    ended = np.zeros((n,), bool)
    for i, (p, s) in enumerate(zip(prompts, samples, strict=True)):
        resp = list(s.tokens)
        ended[i] = s.ended
        if s.ended:
            resp.append(end_id)  # the stop token is not in the sample's tokens
        if not resp:  # nothing generated at all: score the prompt's last token as an empty response
            resp = [end_id]
        row = (p + resp)[:seq_len]
        tokens[i, : len(row)] = row
        mask[i, len(p): len(row)] = 1.0
        last[i] = len(row) - 1
    return {"tokens": tokens, "mask": mask, "last": last, "ended": ended}


class RolloutSource(DataSource):
    """A step's batches are the minibatch updates of one fresh rollout of the current policy (module docstring)."""

    keys = KEYS
    unit = "rollout"

    def __init__(self, ctx: RunContext):
        c, p = ctx.config, ctx.config.ppo
        if p.minibatch % ctx.data_parallel:
            raise ValueError(f"ppo.minibatch={p.minibatch} must be a multiple of the data-parallel devices "
                             f"({ctx.data_parallel})")
        self.ctx, self.p = ctx, p
        self.prompts = read_prompt_ids(c, ctx.tokenizer)
        self.end_id = ctx.tokenizer.special_ids.get(END, ctx.tokenizer.eot_id)
        self.reference = ctx.load_frozen(p.ref_from or c.train.init_from, "ppo.ref_from", "reference policy")
        self.pm = ctx.load_frozen(p.reward_from, "ppo.reward_from", "preference model")
        self.kl_coef = float(p.kl_coef)
        self.rows_per_step = p.epochs * p.rollout_batch
        self.summary = (f"ppo: {len(self.prompts)} prompts; reference {self.reference.where}; preference model "
                        f"{self.pm.where}; {ctx.stage.updates_per_step(c)} updates of {p.minibatch} rows per "
                        f"rollout of {p.rollout_batch}")
        self.sampler = None  # made at the first rollout, from the (restored) policy
        self.step = 0
        self.last: tuple[list[list[int]], list[Any], dict] | None = None  # the latest rollout, for samples
        self._score = ctx.compile(self._score_fn())

    def _score_fn(self):
        p = self.p
        policy = make_scorer(self.ctx.model, p.temperature)
        ref = make_scorer(self.reference.model, p.temperature)
        pm = make_scorer(self.pm.model)

        def score(params, ref_params, pm_params, tokens, mask, last, ended, kl_coef):
            pol = policy(params, tokens, mask, last)
            ref_logp = ref(ref_params, tokens, mask, last)["logp"]
            raw = pm(pm_params, tokens, mask, last)["reward"]
            score = raw - jnp.where(ended, 0.0, p.missing_eos_penalty)
            rewards, kl = rl.ppo_rewards(score, pol["logp"], ref_logp, mask, last, kl_coef, p.kl_estimator)
            if p.whiten_rewards:
                rewards = rl.whiten(rewards, mask, shift_mean=False)
            adv, returns = rl.gae(rewards, pol["values"], mask, p.gamma, p.lam)
            adv = rl.whiten(adv, mask)
            return {"old_logp": pol["logp"], "old_values": pol["values"], "advantages": adv, "returns": returns,
                    "reward": raw, "score": score, "kl": jnp.sum(kl * mask, axis=-1),
                    "explained_variance": rl.explained_variance(pol["values"], returns, mask)}

        return score

    def restore(self, step: int) -> None:
        path = self.ctx.run_dir / KL_FILE
        self.step = step
        if path.exists():
            self.kl_coef = json.loads(path.read_text()).get(str(step), self.kl_coef)

    def save(self, step: int) -> None:
        path = self.ctx.run_dir / KL_FILE
        saved = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**saved, str(step): self.kl_coef}))

    def next(self, state: Any) -> Round:
        ctx, p, seed = self.ctx, self.p, self.ctx.config.train.seed
        t0 = time.perf_counter()
        prompts = [self.prompts[i] for i in rollout_prompts(len(self.prompts), self.step, p.rollout_batch, seed)]
        if self.sampler is None:
            self.sampler = ctx.make_sampler(state.params, "train.stage")
        else:
            self.sampler.set_params(state.params)
        seeds = [seed * 1_000_003 + self.step * p.rollout_batch + i for i in range(len(prompts))]
        samples = self.sampler.sample(prompts, max_new_tokens=p.response_len, temperature=p.temperature,
                                      stop_ids=(self.end_id,), seeds=seeds)
        roll = assemble(prompts, samples, self.end_id, ctx.config.data.seq_len)
        rollout_s = time.perf_counter() - t0
        rows2, rows1 = ctx.batch_sharding(2), ctx.batch_sharding(1)
        stats = jax.device_get(self._score(
            state.params, self.reference.params, self.pm.params, jax.device_put(roll["tokens"], rows2),
            jax.device_put(roll["mask"], rows2), jax.device_put(roll["last"], rows1),
            jax.device_put(roll["ended"], rows1), jnp.float32(self.kl_coef)))
        rows = {"tokens": roll["tokens"], "mask": roll["mask"], **{k: np.asarray(stats[k]) for k in KEYS[2:]}}
        rng = np.random.default_rng([seed, self.step, 7])
        batches = []
        for _ in range(p.epochs):
            order = rng.permutation(p.rollout_batch)
            batches += [{k: v[order[s: s + p.minibatch]][None] for k, v in rows.items()}
                        for s in range(0, p.rollout_batch, p.minibatch)]
        mean_kl = float(np.mean(stats["kl"]))
        info = dict(reward=float(np.mean(stats["reward"])), score=float(np.mean(stats["score"])), kl=mean_kl,
                    kl_coef=self.kl_coef, explained_variance=float(stats["explained_variance"]),
                    response_len=float(roll["mask"].sum(-1).mean()), ended=float(roll["ended"].mean()),
                    rollout_s=rollout_s)
        if p.kl_target > 0:  # the next rollout's coefficient
            self.kl_coef = float(rl.adaptive_kl_coef(self.kl_coef, mean_kl, p.kl_target, p.rollout_batch,
                                                     p.kl_horizon))
        self.last = (prompts, samples, stats)
        self.step += 1
        return Round(batches, info)

    def write_samples(self, state: Any, step: int, n: int = 4) -> tuple[Any, None]:
        """Appends the latest rollout's first ``n`` prompts and responses to rollouts.jsonl (a Hook)."""
        if self.last is not None and self.ctx.main_process:
            prompts, samples, stats = self.last
            with open(self.ctx.run_dir / SAMPLES_FILE, "a", encoding="utf-8") as f:
                for i in range(min(n, len(prompts))):
                    f.write(json.dumps({"step": step, "prompt": self.ctx.tokenizer.decode(prompts[i]),
                                        "response": samples[i].text, "reward": float(stats["reward"][i]),
                                        "kl": float(stats["kl"][i])}, ensure_ascii=False) + "\n")
        return state, None

    def finish(self, summary: dict) -> None:
        if self.ctx.main_process:
            plot = plot_ppo(self.ctx.run_dir, title=f"{self.ctx.config.run.name}: PPO against {self.pm.where}")
            summary["plot"] = str(plot) if plot else None


def _updates(config: Any) -> int:
    return config.ppo.epochs * (config.ppo.rollout_batch // config.ppo.minibatch)


STAGE = Stage(
    name="ppo", doc="PPO of the policy (and its value head) against a preference model, on its own rollouts",
    trainable=lambda path: path[0] != "reward_head",  # policy and critic share the backbone
    batch_keys=KEYS, make_step=make_ppo_step, make_data=RolloutSource,
    hooks=lambda ctx, data: [Hook("samples", data.write_samples, every=ctx.config.train.log_every)],
    updates_per_step=_updates)

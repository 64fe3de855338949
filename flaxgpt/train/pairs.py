"""The data side of the preference stages (``train.stage=pm|dpo``), for the trainer loop.

``prepare_pairs`` reads ``prefs.data``, splits train/validation by prompt, encodes both sets into the
pair arrays of flaxgpt/data/preferences.py, and (DPO) adds the frozen reference policy's summed
response log-probs, computed once and kept in the run directory (``reference_logps.npz``), so a
resumed run uses the same numbers and never holds the reference params during training.
``center_reward`` is the preference model's last step: shift the reward head's bias so the
comparisons' responses average zero reward.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from flaxgpt.data import preferences as prefs
from flaxgpt.data.tokenizer import Tokenizer
from flaxgpt.model.gpt import GPT
from flaxgpt.train.pref_steps import DPO_KEYS, make_scorer
from flaxgpt.train.sharding import batch_sharding

log = logging.getLogger("flaxgpt")
REF_FILE = "reference_logps.npz"
SCORE_BATCH = 16  # rows per scoring forward (reference log-probs, reward centering)
DECISIVE = 0.1  # validation accuracy counts comparisons whose label is at least this far from 0.5


@dataclasses.dataclass
class PairData:
    """What ``prepare_pairs`` returns."""

    train: dict[str, np.ndarray]
    val: dict[str, np.ndarray]
    keys: tuple[str, ...]  # batch keys the step reads
    summary: str  # one line for the console


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in ("tokens", "mask"):
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()[:16]


def make_row_scorer(model: GPT, mesh, rules, *, temperature: float = 1.0):
    """``score(params, tokens [N,T], mask [N,T], last [N]) -> {'logp_sum' [N], 'reward' [N]}`` (numpy), run in
    fixed-size batches on ``mesh`` so it compiles once for any N."""
    score = make_scorer(model, temperature)
    data_parallel = mesh.shape["data"] * mesh.shape["fsdp"]
    b = -(-SCORE_BATCH // data_parallel) * data_parallel
    sh2, sh1 = batch_sharding(mesh, 2), batch_sharding(mesh, 1)

    @jax.jit
    def run(p, t, m, la):
        out = score(p, t, m, la)
        return {"logp_sum": jnp.sum(out["logp"] * m, axis=-1), "reward": out["reward"]}

    def score_rows(params: Any, tokens: np.ndarray, mask: np.ndarray, last: np.ndarray) -> dict[str, np.ndarray]:
        n = len(tokens)
        outs: dict[str, list[np.ndarray]] = {"logp_sum": [], "reward": []}
        with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
            for s in range(0, n, b):
                idx = np.arange(s, s + b) % n  # the last batch wraps around; its extra rows are dropped
                r = jax.device_get(run(params, jax.device_put(tokens[idx], sh2), jax.device_put(mask[idx], sh2),
                                       jax.device_put(last[idx], sh1)))
                for k in outs:
                    outs[k].append(np.asarray(r[k])[: min(b, n - s)])
        return {k: np.concatenate(v) if v else np.zeros((0,), np.float32) for k, v in outs.items()}

    return score_rows


def pair_scores(scorer, params: Any, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Row-scorer outputs for both responses of every pair: {'logp_sum' [N,2], 'reward' [N,2]}."""
    n, _, t = arrays["tokens"].shape
    flat = scorer(params, arrays["tokens"].reshape(2 * n, t), arrays["mask"].reshape(2 * n, t),
                  arrays["last"].reshape(2 * n))
    return {k: v.reshape(n, 2) for k, v in flat.items()}


def _reference_params(config: ml_collections.ConfigDict, init_params: Any, mesh) -> tuple[Any, str]:
    ref_from = config.dpo.ref_from
    if not ref_from:
        return init_params, config.train.init_from or "the initial parameters"
    from flaxgpt.runs.rundir import load_run

    return load_run(ref_from, mesh=mesh).params, ref_from


def prepare_pairs(config: ml_collections.ConfigDict, tokenizer: Tokenizer, rdir: Path, *, model: GPT,
                  init_params: Any, mesh, rules) -> PairData:
    """Comparisons of ``prefs.data`` as train/val pair arrays (plus ``ref_logp`` for DPO); see the module docstring.

    ``init_params`` are the run's parameters before its first step (the DPO reference when ``dpo.ref_from`` is
    empty); only used when the reference log-probs are not in the run directory yet.
    """
    stage = config.train.stage
    comparisons = prefs.read_all(config.prefs.data)
    train_c, val_c = prefs.split(comparisons, config.prefs.val_fraction)
    if not train_c:
        raise ValueError(f"prefs.data: all {len(comparisons)} comparisons fell in the validation split "
                         f"(prefs.val_fraction={config.prefs.val_fraction})")
    seq_len, max_prompt = config.data.seq_len, config.prefs.max_prompt_len
    train, stats = prefs.encode_comparisons(train_c, tokenizer, seq_len, max_prompt)
    val, val_stats = prefs.encode_comparisons(val_c, tokenizer, seq_len, max_prompt)
    keys = prefs.PAIR_KEYS
    summary = (f"prefs.data: {len(train_c):,} train / {len(val_c):,} validation comparisons; "
               f"{stats.prompts_cut + val_stats.prompts_cut} prompts and "
               f"{stats.responses_cut + val_stats.responses_cut} responses cut to data.seq_len={seq_len}")
    if stage == "dpo":
        keys = DPO_KEYS
        path = rdir / REF_FILE
        digest = _digest(train) + _digest(val)
        saved = np.load(path) if path.exists() else None
        if saved is not None and str(saved["digest"]) == digest:
            train["ref_logp"], val["ref_logp"] = saved["train"], saved["val"]
            summary += f"; reference log-probs from {path}"
        else:
            ref_params, where = _reference_params(config, init_params, mesh)
            scorer = make_row_scorer(model, mesh, rules)
            train["ref_logp"] = pair_scores(scorer, ref_params, train)["logp_sum"]
            val["ref_logp"] = (pair_scores(scorer, ref_params, val)["logp_sum"] if len(val_c)
                               else np.zeros((0, 2), np.float32))
            if jax.process_index() == 0:
                np.savez(path, digest=digest, train=train["ref_logp"], val=val["ref_logp"])
            summary += f"; reference log-probs computed once from {where}"
    return PairData(train, val, keys, summary)


def needs_initial_params(config: ml_collections.ConfigDict, rdir: Path) -> bool:
    """Whether ``prepare_pairs`` needs the run's first parameters (DPO with no ``dpo.ref_from`` and no saved
    reference log-probs)."""
    return config.train.stage == "dpo" and not config.dpo.ref_from and not (rdir / REF_FILE).exists()


def center_reward(scorer, params: Any, arrays: dict[str, np.ndarray]) -> tuple[Any, float]:
    """(params with the reward bias shifted so the responses of ``arrays`` average 0, the offset added)."""
    mean = float(np.mean(pair_scores(scorer, params, arrays)["reward"]))
    head = params["reward_head"]
    new_head = {**head, "bias": head["bias"] - jnp.asarray(mean, head["bias"].dtype)}
    return {**params, "reward_head": new_head}, -mean


def center_state(pairs: PairData, model: GPT, state: Any, mesh, rules) -> tuple[Any, float]:
    """The PM's last step (``pm.center``): (state whose reward averages 0 on the training responses, offset)."""
    params, offset = center_reward(make_row_scorer(model, mesh, rules), state.params, pairs.train)
    print(f"pm.center: reward offset by {offset:+.4f} so the training responses average 0")
    return state.replace(params=params), offset


def make_pair_eval(pairs: PairData, model: GPT, config: ml_collections.ConfigDict, mesh, rules):
    """``validate(params) -> metrics`` for pm/dpo on the validation comparisons, or None without any."""
    from flaxgpt.train import rl

    val = pairs.val
    if not len(val["label"]) or config.train.eval_every <= 0:
        return None
    scorer = make_row_scorer(model, mesh, rules)
    stage, d = config.train.stage, config.dpo

    def validate(params: Any) -> dict[str, float]:
        s = pair_scores(scorer, params, val)
        label = val["label"]
        if stage == "pm":
            r = s["reward"]
            loss = rl.soft_bce(r[:, 0], r[:, 1], label)
            margin = r[:, 0] - r[:, 1]
        else:
            loss, rw_c, rw_r = rl.dpo_loss(s["logp_sum"][:, 0], s["logp_sum"][:, 1], val["ref_logp"][:, 0],
                                           val["ref_logp"][:, 1], label, beta=d.beta, loss=d.loss,
                                           label_smoothing=d.label_smoothing,
                                           lengths=(val["mask"][:, 0].sum(-1), val["mask"][:, 1].sum(-1)))
            margin = np.asarray(rw_c) - np.asarray(rw_r)
        # Accuracy counts decisive comparisons only: a soft label of 0.51 (a labeller with no opinion, e.g. one
        # that always picks the same position) says nothing about which response is better.
        decided = np.abs(label - 0.5) >= DECISIVE
        correct = (np.asarray(margin) > 0) == (label > 0.5)
        return {"val_loss": float(np.mean(loss)),
                "val_accuracy": float(correct[decided].mean()) if decided.any() else float("nan"),
                "val_margin": float(np.mean(margin)), "val_decisive": float(decided.sum())}

    return validate

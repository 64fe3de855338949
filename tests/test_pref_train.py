"""The preference stages end to end through the real trainer: SFT -> PM -> PPO, DPO and ORPO, on a yes/no task.

A tiny chat policy is fine-tuned to answer "yes" or "no" about equally often; the comparisons say "yes" is
better. The PM must learn that, PPO must raise the PM reward with the KL to the SFT policy staying bounded
(and resume bitwise after SIGKILL), DPO must raise the chosen-over-rejected margin from ln 2, and ORPO (added
through the stage registry alone) must learn the preference with no reference model.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import chex
import numpy as np
import orbax.checkpoint as ocp
import pytest

from flaxgpt.config import load_config
from flaxgpt.data.chat_shards import tokenize_chat
from flaxgpt.launch.train import train
from flaxgpt.runs.rundir import checkpoint_steps
from flaxgpt.train.logger import read_metrics

# XLA's optimisations on (conftest turns them off): these runs are hundreds of steps over the 50K-id vocabulary,
# about twice as fast optimised. The killed PPO run's process gets the same setting, so bitwise means like for like.
pytestmark = pytest.mark.usefixtures("optimized_module")
ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.n_layer=2", "model.n_head=2", "model.d_model=32", "model.max_len=32", "data.seq_len=32",
        "model.dropout=0.0", "train.batch_size=8", "train.log_every=1", "train.warmup_steps=2",
        "checkpoint.async_save=false"]


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def question(i: int) -> str:
    return f"Is statement {i} true?"


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("yesno")
    chats = [{"messages": [{"role": "user", "content": question(i)},
                           {"role": "assistant", "content": "yes" if i % 2 else "no"}]} for i in range(64)]
    tokenize_chat([_jsonl(d / "chat.jsonl", chats)], d / "chat", fmt="openai", name="chat", progress=False)
    pairs = [{"prompt": [{"role": "user", "content": question(i)}], "chosen": "yes", "rejected": "no"}
             for i in range(64)]
    prompts = [{"prompt": question(i)} for i in range(100, 132)]
    return {"dir": d, "chat": d / "chat", "pairs": _jsonl(d / "pairs.jsonl", pairs),
            "prompts": _jsonl(d / "prompts.jsonl", prompts)}


def metrics(run_dir: Path, kind: str) -> list[dict]:
    return [r for r in read_metrics(run_dir) if r["kind"] == kind]


@pytest.fixture(scope="module")
def sft_run(task) -> Path:
    run = task["dir"] / "sft"
    train(load_config(ROOT / "experiments/sft_micro.py", [
        *TINY, f"run.dir={run}", f"data.sources.chat.path={task['chat']}", "train.steps=150", "train.lr=1e-2",
        "train.eval_every=0", "checkpoint.every=150"]), show_progress=False)
    return run


@pytest.fixture(scope="module")
def pm_run(task, sft_run) -> Path:
    run = task["dir"] / "pm"
    train(load_config(ROOT / "experiments/pm_micro.py", [
        *TINY, f"run.dir={run}", f"prefs.data={task['pairs']}", f"train.init_from={sft_run}", "train.steps=30",
        "train.lr=1e-3", "prefs.val_fraction=0.25", "train.eval_every=30", "checkpoint.every=30"]),
        show_progress=False)
    return run


def test_pm_learns_the_preference_and_is_centred(pm_run):
    ev = metrics(pm_run, "eval")[-1]
    assert ev["val_accuracy"] > 0.95
    offset = metrics(pm_run, "pm")[-1]["reward_offset"]
    assert math.isfinite(offset)
    # After centring, the rewards of "yes" and "no" average ~0 and keep their order.
    from flaxgpt.eval.judges import PMJudge

    prompts = [({"role": "user", "content": question(i)},) for i in range(8)]
    r = PMJudge(pm_run).rewards(prompts * 2, ["yes"] * 8 + ["no"] * 8)
    assert abs(float(np.mean(r))) < 0.5 * float(np.mean(r[:8]) - np.mean(r[8:]))
    assert (r[:8] > r[8:]).all()


def test_ppo_raises_the_pm_reward_with_bounded_kl(task, sft_run, pm_run):
    run = task["dir"] / "ppo"
    config = load_config(ROOT / "experiments/ppo_micro.py", [
        *TINY, f"run.dir={run}", f"train.init_from={sft_run}", f"ppo.reward_from={pm_run}",
        f"ppo.prompts={task['prompts']}", "ppo.rollout_batch=16", "ppo.minibatch=8", "ppo.response_len=4",
        "ppo.epochs=4", "train.steps=10", "train.lr=2e-3", "checkpoint.every=5"])
    summary = train(config, show_progress=False)
    rows = metrics(run, "train")
    assert len(rows) == 10 and summary["status"] == "completed"
    reward = [r["reward"] for r in rows]
    assert np.mean(reward[-4:]) > np.mean(reward[:4]) + 0.2, reward
    assert max(r["kl"] for r in rows) < 10.0  # nats per response (of a few tokens)
    for r in rows:
        assert 0.0 <= r["clipfrac"] <= 1.0 and r["entropy"] > 0 and math.isfinite(r["vf_loss"])
    assert (run / "rollouts.jsonl").exists() and (run / "ppo.png").exists()


def _final_params(run_dir: Path, step: int):
    with ocp.CheckpointManager(Path(run_dir).absolute() / "checkpoints") as mngr:
        return mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]["params"]


def test_ppo_killed_with_sigkill_resumes_exactly(task, sft_run, pm_run):
    """A PPO run killed mid-run resumes to the same parameters as an uninterrupted one (rollouts, minibatch order
    and the adaptive KL coefficient all carry over)."""
    steps = 6
    args = [*TINY, f"train.init_from={sft_run}", f"ppo.reward_from={pm_run}", f"ppo.prompts={task['prompts']}",
            "ppo.rollout_batch=8", "ppo.minibatch=8", "ppo.response_len=4", "ppo.epochs=1", f"train.steps={steps}",
            "checkpoint.every=1", "checkpoint.keep=2", "ppo.kl_target=1.0"]
    straight, killed = task["dir"] / "ppo_straight", task["dir"] / "ppo_killed"
    # The uninterrupted run saves only at its end: checkpoints change nothing in what it computes.
    train(load_config(ROOT / "experiments/ppo_micro.py", [*args, f"run.dir={straight}", f"checkpoint.every={steps}"]),
          show_progress=False)
    env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="false")
    proc = subprocess.Popen([sys.executable, "-m", "flaxgpt.cli", "train", str(ROOT / "experiments/ppo_micro.py"),
                             *args, f"run.dir={killed}"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while 2 not in checkpoint_steps(killed):
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "no checkpoint in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = checkpoint_steps(killed)
    assert proc.returncode == -signal.SIGKILL and done and max(done) < steps
    resumed = train(load_config(ROOT / "experiments/ppo_micro.py", [*args, f"run.dir={killed}"]), show_progress=False)
    assert resumed["start_step"] == max(done) and resumed["step"] == steps
    rows, ref = metrics(killed, "train"), metrics(straight, "train")
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    assert rows[-1]["kl_coef"] != pytest.approx(0.05)  # adapted, and carried over the restart
    np.testing.assert_allclose([r["kl_coef"] for r in rows], [r["kl_coef"] for r in ref], rtol=0, atol=1e-7)
    np.testing.assert_allclose([r["reward"] for r in rows], [r["reward"] for r in ref], rtol=0, atol=1e-6)
    chex.assert_trees_all_equal(_final_params(killed, steps), _final_params(straight, steps))  # bitwise


def test_dpo_starts_at_ln2_and_raises_the_margin(task, sft_run, capsys):
    run = task["dir"] / "dpo"
    args = [*TINY, f"run.dir={run}", f"prefs.data={task['pairs']}", f"train.init_from={sft_run}", "train.steps=20",
            "train.lr=1e-3", "prefs.val_fraction=0.25", "train.eval_every=10", "checkpoint.every=10"]
    train(load_config(ROOT / "experiments/dpo_micro.py", args), stop_at=10, show_progress=False)
    assert "reference log-probs computed once" in capsys.readouterr().out
    assert (run / "reference_logps.npz").exists()
    train(load_config(ROOT / "experiments/dpo_micro.py", args), show_progress=False)
    assert "reference log-probs from" in capsys.readouterr().out  # the resumed run reuses them
    rows = metrics(run, "train")
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)
    evals = metrics(run, "eval")
    assert evals[-1]["val_reward_margin"] > evals[0]["val_reward_margin"] > 0
    assert evals[-1]["val_accuracy"] == 1.0
    assert rows[-1]["rewards_chosen"] > rows[-1]["rewards_rejected"]


def test_orpo_added_through_the_registry_learns_the_preference_with_no_reference(task, sft_run):
    """ORPO is one module and one registry line: it trains through the same loop, data and validation."""
    run = task["dir"] / "orpo"
    args = [*TINY, f"run.dir={run}", f"prefs.data={task['pairs']}", f"train.init_from={sft_run}", "train.steps=12",
            "train.lr=1e-2", "prefs.val_fraction=0.25", "train.eval_every=6", "checkpoint.every=12"]
    summary = train(load_config(ROOT / "experiments/orpo_micro.py", args), show_progress=False)
    assert summary["status"] == "completed" and not (run / "reference_logps.npz").exists()
    rows, evals = metrics(run, "train"), metrics(run, "eval")
    # The SFT policy answers "no" to half the questions, so it prefers "yes" (higher log odds) on half the pairs;
    # ORPO's margin is absolute (no reference), and it must flip the other half.
    assert rows[0]["accuracy"] < 0.9 and evals[-1]["val_accuracy"] == 1.0
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert evals[-1]["val_reward_margin"] > evals[0]["val_reward_margin"] > 0  # the log odds ratio
    assert rows[-1]["nll_chosen"] < rows[-1]["nll_rejected"]

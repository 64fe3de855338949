"""``flaxgpt info RUN_DIR``: what a run is and how far it got, read from its files (no devices)."""

from __future__ import annotations

import json
from pathlib import Path

from flaxgpt.config import from_dict
from flaxgpt.model.gpt import ModelConfig, gpt2_param_count
from flaxgpt.runs.rundir import checkpoint_steps
from flaxgpt.train.logger import read_metrics


def describe_run(run_dir: str | Path) -> str:
    """A human-readable summary: config, parameter count, checkpoints and the latest metrics."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
    config = from_dict(json.loads(cfg_path.read_text()))
    mcfg = ModelConfig.from_config(config.model)
    steps = checkpoint_steps(run_dir)
    records = read_metrics(run_dir)
    last_train = next((r for r in reversed(records) if r.get("kind") == "train"), None)
    last_eval = next((r for r in reversed(records) if r.get("kind") == "eval"), None)
    lines = [
        f"run: {run_dir}",
        f"model: {mcfg.n_layer} layers, {mcfg.n_head} heads, d_model {mcfg.d_model}, context {mcfg.max_len}, "
        f"{gpt2_param_count(mcfg):,} parameters (GPT-2 count), dtype {mcfg.dtype}",
        f"steps: {steps[-1] if steps else 0} of {config.train.steps} (checkpoints: {steps or 'none'})",
        "data: " + ", ".join(f"{n} ({s.path}, weight {s.weight})" for n, s in config.data.sources.items()),
        _mesh_line(config, run_dir / "checkpoints" / str(steps[-1]) / "meta" / "metadata" if steps else None),
    ]
    if last_train:
        lines.append("latest train: " + _fmt(last_train))
    if last_eval:
        lines.append("latest eval: " + _fmt(last_eval))
    for extra in ("metrics.jsonl", "loss.png", "tensorboard"):
        if (run_dir / extra).exists():
            lines.append(f"{extra}: {run_dir / extra}")
    lines.append("config:")
    lines.extend("  " + line for line in config.to_json(indent=2).splitlines())
    return "\n".join(lines)


def _mesh_line(config, meta_file: Path | None) -> str:
    """The mesh the config asks for and the processes and devices that wrote the latest checkpoint."""
    m = config.mesh
    line = f"mesh: data={m.data} fsdp={m.fsdp} tensor={m.tensor} (-1: the devices left)"
    if meta_file is not None and meta_file.exists():
        t = json.loads(meta_file.read_text())
        line += (f"; latest checkpoint written by {t['process_count']} process(es), {t['device_count']} "
                 f"{t['platform']} device(s)")
    return line + f"; intended hardware: {config.run.hardware}"


def _fmt(record: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items() if k != "kind")

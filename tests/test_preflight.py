"""`flaxgpt preflight`: hardware names, the analytic estimate, and the real step compiled for a TPU slice.

The compile test runs the command with .venv-tpu's Python (libtpu lives only there, `make setup-tpu`; `make test`
makes it first): a tiny config must fit a v5e:2x2 slice with small per-chip numbers, and the same model with a
batch far beyond a v5e chip's 16 GiB must be reported as not fitting, with XLA's numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from flaxgpt.config import ConfigError, default_config, validate
from flaxgpt.launch.preflight import GiB, estimate_report, parse_hardware

ROOT = Path(__file__).resolve().parents[1]
TPU_PYTHON = ROOT / ".venv-tpu" / "bin" / "python"

TINY = """
from flaxgpt.config import default_config

def get_config():
    c = default_config()
    c.run.name = "{name}"
    c.run.hardware = "v5e-4"
    c.model.vocab_size, c.model.n_layer, c.model.n_head, c.model.d_model = 128, 1, 2, {d_model}
    c.model.max_len = c.data.seq_len = 32
    c.data.tokenizer = "gpt2"
    c.train.batch_size = {batch}
    return c
"""


@pytest.mark.parametrize("spec, chips, topology", [
    ("v4-8", 4, "v4:2x2x1"), ("v4-16", 8, "v4:2x2x2"), ("v5p-8", 4, "v5p:2x2x1"), ("v5p-16", 8, "v5p:2x2x2"),
    ("v5e-4", 4, "v5e:2x2"), ("v5e-8", 8, "v5e:2x4"), ("v5litepod-16", 16, "v5e:4x4"), ("v6e-8", 8, "v6e:2x4"),
    ("v5e:2x2", 4, "v5e:2x2"), ("v4:2x2x2", 8, "v4:2x2x2"),
])
def test_tpu_names_count_chips(spec, chips, topology):
    # v4/v5p type names count TensorCores (2 per chip), v5e/v6e names count chips.
    target = parse_hardware(spec)
    assert (target.platform, target.chips, target.topology) == ("tpu", chips, topology)


@pytest.mark.parametrize("spec", ["v4-6", "v4:2x2", "v7-8", "gpu:x100x2", "tpu"])
def test_bad_hardware_names(spec):
    with pytest.raises(ConfigError):
        parse_hardware(spec)


def test_run_hardware_is_validated():
    c = default_config()
    c.run.hardware = "v5e8"
    with pytest.raises(ConfigError, match="run.hardware"):
        validate(c)


def test_gpu_estimate_divides_state_by_fsdp():
    # GPT-2 small shapes: f32 params + Adam m and v are 12 bytes per parameter, split 8 ways under FSDP.
    c = default_config()
    c.model.n_layer, c.model.n_head, c.model.d_model, c.model.max_len = 12, 12, 768, 1024
    c.model.dtype, c.data.seq_len, c.train.batch_size = "bfloat16", 1024, 64
    one = estimate_report("gpt2", c, parse_hardware("gpu:h100x1"))
    c.mesh.data, c.mesh.fsdp = 1, -1
    eight = estimate_report("gpt2", c, parse_hardware("gpu:h100x8"))
    assert one.params == eight.params and 124e6 < one.params < 125e6
    assert one.estimate["state"] == pytest.approx(12 * one.params, rel=0.01)
    assert eight.estimate["state"] == pytest.approx(one.estimate["state"] / 8, rel=0.01)
    assert eight.estimate["activations"] == pytest.approx(one.estimate["activations"] / 8)
    assert one.method == "analytic estimate" and not one.fits and eight.fits  # 64 x 1024 without remat: > 60 GB
    assert one.model_flops == pytest.approx(eight.model_flops) and one.mfu_ceiling == 1.0
    c.model.remat = "full"
    # Full remat runs each block's forward twice (8N of 6N); the tied LM head is not recomputed.
    assert 0.75 < estimate_report("gpt2", c, parse_hardware("h100x8")).mfu_ceiling < 0.85


def test_tiny_config_fits_a_v5e_slice_and_a_huge_batch_does_not(tmp_path):
    assert TPU_PYTHON.exists(), "no .venv-tpu: run `make setup-tpu` (`make test` does)"
    (tmp_path / "tiny.py").write_text(TINY.format(name="tiny", d_model=32, batch=8))
    (tmp_path / "huge.py").write_text(TINY.format(name="huge", d_model=256, batch=262144))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}  # no test-session cache
    out = subprocess.run([str(TPU_PYTHON), "-m", "flaxgpt.cli", "preflight", str(tmp_path / "tiny.py"),
                          str(tmp_path / "huge.py"), "--json", str(tmp_path / "r.json")],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 1, out.stdout + out.stderr[-3000:]  # 1: something does not fit
    tiny, huge = json.loads((tmp_path / "r.json").read_text())
    assert tiny["config"] == "tiny" and tiny["method"] == "compiled" and tiny["fits"]
    assert tiny["chips"] == 4 and tiny["mesh"] == {"data": 4, "fsdp": 1, "tensor": 1}
    assert 0 < tiny["arguments"] < 1e6 and 0 <= tiny["temporaries"] < 64e6 and 0 < tiny["total"] < 0.1 * GiB
    assert tiny["memory"] == 16 * GiB
    assert not huge["fits"] and "RESOURCE_EXHAUSTED" in huge["note"]
    assert huge["temporaries"] > 15.75 * GiB and huge["total"] > huge["temporaries"] and huge["memory"] == 16 * GiB
    assert "exceeds available HBM (15.75G)" in huge["note"]
    assert "| tiny | v5e-4 (v5e:2x2) | 4 | 4/1/1 |" in out.stdout and "| NO |" in out.stdout


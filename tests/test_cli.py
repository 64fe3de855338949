"""The `flaxgpt` command: tokenize -> train -> info through main(), and errors that name the key."""

from __future__ import annotations

from pathlib import Path

from flaxgpt.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def test_tokenize_train_info_from_the_command_line(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["tokenize", str(ROOT / "examples/persona/notes"), "--out", str(data), "--name", "notes",
                 "--tokenizer", "flaxgpt"]) == 0
    run = tmp_path / "run"
    assert main(["train", str(ROOT / "experiments/micro.py"), f"run.dir={run}", f"data.sources.personal.path={data}",
                 "model.n_layer=1", "model.d_model=32", "model.n_head=2", "model.scan_unroll=1",
                 "train.steps=4", "train.batch_size=8", "train.eval_every=2", "checkpoint.every=2"]) == 0
    assert (run / "checkpoints" / "4").is_dir() and (run / "loss.png").exists()
    capsys.readouterr()
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "steps: 4 of 4" in out and "val_loss" in out


def test_bad_override_exits_2_naming_the_key(capsys):
    assert main(["train", str(ROOT / "experiments/micro.py"), "model.n_layers=3"]) == 2
    assert "unknown config key 'model.n_layers'" in capsys.readouterr().err


def test_missing_config_file_exits_2(capsys):
    assert main(["train", "experiments/nope.py"]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_info_on_a_non_run_directory_exits_2(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err

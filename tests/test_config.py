"""Configs: experiment files, dotted overrides, errors that name the key, save and reload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flaxgpt.config import ConfigError, apply_overrides, default_config, from_dict, load_config, to_json

EXPERIMENTS = sorted(Path("experiments").glob("*.py"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_file_loads_and_validates(path):
    from flaxgpt.cai.pipeline import Pipeline, is_pipeline
    from flaxgpt.config import read_config_file

    raw = read_config_file(path)
    if is_pipeline(raw):  # a pipeline: its stages are known and each training stage's config validates
        pipeline = Pipeline(raw, runner=lambda args: 0)
        for stage in ("sft", "pm", "ppo", "dpo"):
            load_config(pipeline.c[stage].config)
        return
    config = load_config(path)
    assert config.model.d_model % config.model.n_head == 0


def test_required_experiments_exist():
    names = {p.stem for p in EXPERIMENTS}
    assert {"micro", "gpt2_124m", "small_350m", "medium_750m", "large_1b"} <= names
    small = load_config("experiments/small_350m.py")
    assert (small.model.n_layer, small.model.n_head, small.model.d_model, small.model.max_len) == (24, 16, 1024, 2048)


def test_overrides_set_values_with_the_fields_type():
    c = default_config()
    apply_overrides(c, ["model.n_layer=6", "train.lr=1e-3", "train.weight_decay=0", "model.dtype=bfloat16",
                        "run.resume=false", "+data.sources.general.path=/tmp/general",
                        "data.sources.general.weight=0.3"])
    assert c.model.n_layer == 6 and c.train.lr == 1e-3
    assert isinstance(c.train.weight_decay, float) and c.train.weight_decay == 0.0
    assert c.model.dtype == "bfloat16" and c.run.resume is False
    assert c.data.sources.general.path == "/tmp/general" and c.data.sources.general.weight == 0.3


@pytest.mark.parametrize("override, key", [
    ("model.n_layers=4", "model.n_layers"),
    ("modle.n_layer=4", "modle"),
    ("train.stepz=5", "train.stepz"),
])
def test_unknown_keys_are_errors_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        apply_overrides(default_config(), [override])


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError, match="did you mean n_layer"):
        apply_overrides(default_config(), ["model.n_layers=4"])


@pytest.mark.parametrize("override, key", [
    ("model.n_layer=four", "model.n_layer"),
    ("model.n_layer=2.5", "model.n_layer"),
    ("run.resume=maybe", "run.resume"),
    ("train.lr=fast", "train.lr"),
    ("model=3", "model"),
])
def test_wrong_types_are_errors_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        apply_overrides(default_config(), [override])


@pytest.mark.parametrize("override, key", [
    ("model.n_head=5", "model.d_model"),
    ("data.seq_len=4096", "data.seq_len"),
    ("train.grad_accum=3", "train.batch_size"),
    ("model.remat=sometimes", "model.remat"),
    ("mesh.data=-1 mesh.fsdp=-1", "mesh"),
    ("train.lr=1e999", "train.lr"),  # inf: NaN at step 2 before
    ("dpo.beta=nan", "dpo.beta"),
])
def test_inconsistent_values_fail_validation_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config("experiments/micro.py", override.split())


def test_a_misspelt_data_source_is_an_error_and_a_new_one_needs_a_plus():
    with pytest.raises(ConfigError, match="unknown data source 'persnal' .*sources: personal.*write "
                                          r"\+data.sources.persnal.path"):
        load_config("experiments/micro.py", ["data.sources.persnal.path=/tmp/x"])
    config = load_config("experiments/micro.py", ["+data.sources.blog.path=/tmp/blog", "data.sources.blog.weight=2"])
    assert sorted(config.data.sources) == ["blog", "personal"] and config.data.sources.blog.weight == 2.0
    with pytest.raises(ConfigError, match="unknown config key 'model.widht'"):
        load_config("experiments/micro.py", ["+model.widht=3"])  # + adds data sources only


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(default_config(), ["model.n_layer"])


def test_saved_config_reloads_identically():
    config = load_config("experiments/gpt2_124m.py", ["train.steps=7", "+data.sources.extra.path=x"])
    again = from_dict(json.loads(to_json(config)))
    assert to_json(again) == to_json(config)

"""nvlm.config: the one merge order, validation, re-derivation through resolve, config.yaml."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from nvlm import config
from nvlm.config import ModelConfig, check_range, register_model
from nvlm.errors import UserError
from nvlm.resolve import resolve


@dataclass(frozen=True)
class ToyConfig(ModelConfig):
    """A stand-in model config: a few fields, a tuple, and a per-model seq_len rule."""

    hidden_size: int = 64
    num_layers: int = 2
    cutoffs: tuple[int, ...] = (10, 20)

    def validate(self, run) -> None:
        check_range("data.seq_len", run.data.seq_len, ge=8, le=512)


@dataclass(frozen=True)
class ToyElectraConfig(ToyConfig):
    """The toy with the model keys that the shipped presets set for electra."""

    generator_weight: float = 1.0
    discriminator_weight: float = 50.0
    beam_size: int = 4
    n_best: int = 20
    max_answer_len: int = 30
    null_threshold: float = 0.0


TOY_SIZES = {
    "tiny": {"hidden_size": 32, "num_layers": 1},
    "base": {"hidden_size": 768, "num_layers": 12},
    "large": {"hidden_size": 1024, "num_layers": 24},  # the size the BERT GPU presets name
}

# A user preset whose stage also sets model keys: a hardware preset lies above the size preset.
USER_PRESET = """
system: {name: Test box, gpus_per_node: 2, gpu: T4, gpu_memory_gb: 16, precision: fp32,
         peak_tflops: {fp32: 8.1}}
models:
  toy:
    train:
      gpus: 2
      global_batch: 64
      train: {batch_size: 16, accumulation: 2, lr: 1e-3, warmup_steps: 10}
      data: {seq_len: 256}
      model: {size: tiny, hidden_size: 100}
"""


@pytest.fixture(autouse=True)
def models(monkeypatch):
    """A private registry: the toy under its own name and under the built-in model names."""
    monkeypatch.setattr(config, "_MODELS", {})
    for name in ("toy", "bert", "transformer-xl"):
        register_model(name, ToyConfig, TOY_SIZES)
    register_model("electra", ToyElectraConfig, TOY_SIZES)


@pytest.fixture
def user_preset(tmp_path) -> Path:
    path = tmp_path / "box-fp32.yaml"
    path.write_text(USER_PRESET)
    return path


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- merge order, layer by layer --------------------------------------------------------------


def test_defaults_then_size_preset_of_the_default_size():
    res = resolve("toy", "train")
    assert res.config.train.lr == 1e-4 and res.config.train.batch_size == 8
    assert res.config.model.size == "base" and res.config.model.hidden_size == 768
    assert res.provenance["train.lr"] == "default"
    assert res.provenance["model.hidden_size"] == "size base"
    assert res.notes == []


def test_size_is_read_from_the_final_merge():
    res = resolve("toy", "train", flags={"model.size": "tiny"})
    assert (res.config.model.hidden_size, res.config.model.num_layers) == (32, 1)


def test_hardware_preset_overrides_size_preset(user_preset):
    res = resolve("toy", "train", preset=str(user_preset))
    m, t = res.config.model, res.config.train
    assert m.size == "tiny" and m.num_layers == 1  # the size the preset picked
    assert m.hidden_size == 100  # the preset's own value beats the size preset's 32
    assert (t.batch_size, t.accumulation, t.gpus, t.lr) == (16, 2, 2, 1e-3)
    assert res.config.global_batch == 64
    assert res.provenance["model.hidden_size"] == "preset box-fp32"
    assert res.provenance["model.num_layers"] == "size tiny"


def test_config_file_overrides_preset_nested_and_dotted(user_preset, tmp_path):
    cfg = write_yaml(tmp_path / "over.yaml", "train:\n  lr: 2e-4\ndata.seq_len: 64\n")
    res = resolve("toy", "train", preset=str(user_preset), config_file=cfg)
    assert res.config.train.lr == 2e-4  # "2e-4" is a string to PyYAML; it must parse
    assert res.config.data.seq_len == 64
    assert res.provenance["train.lr"] == f"--config {cfg}"


def test_set_overrides_config_file_and_flags_override_set(user_preset, tmp_path):
    cfg = write_yaml(tmp_path / "over.yaml", "train: {lr: 2e-4, steps: 50}\n")
    res = resolve(
        "toy",
        "train",
        preset=str(user_preset),
        config_file=cfg,
        sets=["train.lr=3e-4", "train.steps=60"],
        flags={"train.steps": 70, "train.seed": None},
    )
    assert res.config.train.lr == 3e-4
    assert res.config.train.steps == 70
    assert res.config.train.seed == 42  # a None flag means "not given"
    assert res.provenance["train.lr"] == "--set" and res.provenance["train.steps"] == "flag"


def test_set_values_are_yaml_scalars():
    res = resolve(
        "toy",
        "train",
        sets=[
            "train.lr=1e-4",
            "train.xla=true",
            "data.seq_len=256",
            "train.steps=1e4",
            "train.epochs=2",
            "train.warmup_proportion=0.1",
            "model.cutoffs=[5, 6]",
        ],
    )
    t = res.config.train
    assert (t.lr, t.xla, t.steps, t.epochs) == (1e-4, True, 10000, 2.0)
    assert isinstance(t.steps, int) and isinstance(t.epochs, float)
    assert res.config.data.seq_len == 256
    assert res.config.model.cutoffs == (5, 6)
    assert resolve("toy", "train", sets=["train.epochs=null"]).config.train.epochs is None


# --- errors: one line naming the key path and the fix ----------------------------------------


@pytest.mark.parametrize(
    "setting, message",
    [
        (
            "train.lrr=1",
            "unknown config key 'train.lrr'; did you mean 'train.lr'? (allowed in train: accumulation, allreduce_fp16, batch_size,",
        ),
        ("data.seqlen=1", "unknown config key 'data.seqlen'; did you mean 'data.seq_len'?"),
        (
            "model.hiden_size=1",
            "(allowed in model: cutoffs, dropout, hidden_size, num_layers, size)",
        ),
        ("lr=1", "unknown config key 'lr' in --set; did you mean 'train.lr'?"),
        ("optim.lr=1", "unknown config key 'optim.lr' in --set (keys are section.name"),
        ("train.precision=fp8", "train.precision='fp8' is not one of fp32, tf32, amp, bf16"),
        ("train.optimizer=sgd", "train.optimizer='sgd' is not one of lamb, adamw"),
        ("train.batch_size=abc", "train.batch_size='abc' is not an integer"),
        ("train.steps=0.5", "train.steps=0.5 is not an integer"),
        ("train.xla=maybe", "train.xla='maybe' is not true or false"),
        ("train.lr=fast", "train.lr='fast' is not a number"),
        ("train.batch_size=0", "train.batch_size=0 must be >= 1"),
        ("train.gpus=-2", "train.gpus=-2 must be >= 1"),
        ("train.lr=0", "train.lr=0 must be > 0"),
        ("model.dropout=1", "model.dropout=1 must be < 1"),
        ("model.dropout=-0.1", "model.dropout=-0.1 must be >= 0"),
        ("data.seq_len=1024", "data.seq_len=1024 must be <= 512"),  # the model's validate()
        ("data.seq_len=4 data.max_predictions=2", "data.seq_len=4 must be >= 8"),
        (
            "model.size=huge",
            "model.size='huge' is not a size of toy (available: tiny, base, large, custom)",
        ),
        ("train.lr=", "train.lr must not be empty"),
        ("data.max_predictions=200", "data.max_predictions=200 exceeds data.seq_len=128"),
    ],
)
def test_bad_settings_are_one_line_user_errors(setting, message):
    with pytest.raises(UserError) as err:
        resolve("toy", "train", sets=setting.split(" "))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_warmup_steps_and_proportion_together_are_rejected():
    with pytest.raises(
        UserError,
        match=r"train.warmup_steps=10 and train.warmup_proportion=0.1 are both set \(set train.warmup_steps=0",
    ):
        resolve("toy", "train", sets=["train.warmup_steps=10", "train.warmup_proportion=0.1"])


def test_squad_window_must_hold_a_stride():
    with pytest.raises(
        UserError, match=r"data.seq_len=128 leaves 61 document tokens .* data.doc_stride=128"
    ):
        resolve("toy", "squad", sets=["data.seq_len=128"])
    assert resolve("toy", "squad", sets=["data.seq_len=384"]).config.data.doc_stride == 128


def test_set_without_equals_and_unknown_model():
    with pytest.raises(UserError, match=r"--set expects key=value, got 'train.lr'"):
        resolve("toy", "train", sets=["train.lr"])
    with pytest.raises(
        UserError, match=r"unknown model 'gpt' \(available: bert, electra, toy, transformer-xl\)"
    ):
        resolve("gpt", "train")


def test_config_file_errors(tmp_path):
    with pytest.raises(UserError, match="config file .*missing.yaml"):
        resolve("toy", "train", config_file=tmp_path / "missing.yaml")
    broken = write_yaml(tmp_path / "broken.yaml", "train: {lr: [1,\n")
    with pytest.raises(UserError, match=r"broken.yaml is not valid YAML at line \d"):
        resolve("toy", "train", config_file=broken)
    other = write_yaml(tmp_path / "other.yaml", "model_name: electra\nstage: train\n")
    with pytest.raises(UserError, match="is for model_name 'electra', not 'toy'"):
        resolve("toy", "train", config_file=other)
    scalar = write_yaml(tmp_path / "scalar.yaml", "train: 3\n")
    with pytest.raises(UserError, match="config section 'train' in .* must be a mapping"):
        resolve("toy", "train", config_file=scalar)


def test_register_model_checks_the_class_and_its_sizes():
    with pytest.raises(TypeError):
        register_model("x", dict, {})
    with pytest.raises(UserError, match="unknown config key 'model.layers'"):
        register_model("x", ToyConfig, {"tiny": {"layers": 1}})


def test_a_plain_dataclass_with_size_and_dropout_gets_the_shared_bounds():
    @dataclass(frozen=True)
    class Plain:
        size: str = "base"
        dropout: float = 0.1

    register_model("plain", Plain, {})
    assert resolve("plain", "train").config.model == Plain()
    with pytest.raises(UserError, match="model.dropout=2 must be < 1"):
        resolve("plain", "train", sets=["model.dropout=2"])


# --- --gpus re-derivation through resolve (numbers: the shipped dgx1-16g-amp preset) -----------


def test_fewer_gpus_keeps_the_global_batch_and_says_so():
    res = resolve("bert", "pretrain_phase1", preset="dgx1-16g-amp", flags={"train.gpus": 4})
    t = res.config.train
    assert (t.gpus, t.batch_size, t.accumulation, t.lr) == (4, 60, 256, 1.5e-3)
    assert res.config.global_batch == 61440 and res.config.effective_lr == pytest.approx(6e-3)
    assert res.notes == [
        "4 GPUs instead of the preset's 8: accumulation 128 -> 256 keeps the global batch "
        "61,440; per-GPU lr 7.5e-4 -> 1.5e-3 keeps the effective lr 6e-3"
    ]
    assert res.provenance["train.accumulation"] == "preset dgx1-16g-amp (re-derived for 4 GPUs)"


def test_absolute_lr_is_unchanged_when_gpus_change():
    res = resolve("electra", "pretrain_phase1", preset="dgx2-amp", sets=["train.gpus=8"])
    t = res.config.train
    assert (t.batch_size, t.accumulation, t.lr) == (176, 48, 6e-3)
    assert res.notes[0].endswith("lr 6e-3 is absolute and stays")


def test_explicit_accumulation_wins_and_the_changed_global_batch_is_noted():
    res = resolve(
        "bert",
        "pretrain_phase1",
        preset="dgx1-16g-amp",
        sets=["train.accumulation=10"],
        flags={"train.gpus": 4},
    )
    assert res.config.train.accumulation == 10 and res.config.train.lr == 1.5e-3
    assert any(
        "global batch 2,400 (60 x 10 x 4 GPUs) differs from the preset's 61,440" in n
        for n in res.notes
    )


def test_warmup_longer_than_training_is_noted():
    res = resolve("bert", "pretrain_phase1", preset="dgx1-16g-amp", sets=["train.steps=20"])
    assert res.notes == [
        "train.warmup_steps=2133 >= train.steps=20: the learning rate never leaves warm-up"
    ]


def test_unknown_stage_of_a_preset():
    with pytest.raises(
        UserError,
        match=r"preset dgx2-amp has no bert.finetune section \(available stages: pretrain_phase1, pretrain_phase2, squad, classify\)",
    ):
        resolve("bert", "finetune", preset="dgx2-amp")


# --- config.yaml ------------------------------------------------------------------------------


def test_config_yaml_round_trip(tmp_path, user_preset):
    res = resolve(
        "toy",
        "train",
        preset=str(user_preset),
        sets=["model.cutoffs=[3, 4, 5]", "train.epsilon=1e-8", "train.epochs=1.5"],
    )
    path = config.write(res.config, tmp_path / "run")
    assert path == tmp_path / "run" / "config.yaml"
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temp file left behind
    text = path.read_text()
    assert text.startswith("# nvlm resolved run configuration")
    assert "# global batch = 16 x 2 x 2 GPUs = 64 sequences" in text
    tree = yaml.safe_load(text)
    assert list(tree) == ["model_name", "stage", "preset", "model", "train", "data"]
    loaded = config.load(path)
    assert loaded == res.config
    assert config.load(tmp_path / "run") == res.config  # a run directory works too
    assert dataclasses.asdict(loaded.model)["cutoffs"] == (3, 4, 5)


def test_a_child_reading_config_yaml_gets_the_same_config_and_no_notes(tmp_path):
    """The launcher's child: same command plus --config RUN/config.yaml."""
    flags = {"train.gpus": 4}
    parent = resolve("bert", "pretrain_phase1", preset="dgx1-16g-amp", flags=flags)
    path = config.write(parent.config, tmp_path)
    child = resolve("bert", "pretrain_phase1", preset="dgx1-16g-amp", config_file=path, flags=flags)
    assert child.config == parent.config
    assert child.notes == []


def test_load_validates_like_resolve(tmp_path):
    res = resolve("toy", "train")
    tree = config.to_dict(res.config)
    tree["train"]["precision"] = "fp8"
    bad = write_yaml(tmp_path / "config.yaml", yaml.safe_dump(tree))
    with pytest.raises(UserError, match="train.precision='fp8' is not one of"):
        config.load(bad)
    with pytest.raises(UserError, match="lacks model_name, stage"):
        config.load(write_yaml(tmp_path / "empty.yaml", "train: {lr: 1.0e-3}\n"))


def test_custom_size_keeps_the_given_architecture():
    res = resolve("toy", "train", sets=["model.size=custom", "model.hidden_size=48"])
    assert (res.config.model.hidden_size, res.config.model.num_layers) == (48, 2)

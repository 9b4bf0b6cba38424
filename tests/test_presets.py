"""Hardware presets: the shipped numbers, validation of broken files, rederive, the CLI."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from nvlm import presets
from nvlm.cli.main import app
from nvlm.errors import UserError

SHIPPED = [
    "cpu-bf16",
    "cpu-fp32",
    "dgx1-16g-amp",
    "dgx1-16g-fp32",
    "dgx1-32g-amp",
    "dgx1-32g-fp32",
    "dgx2-amp",
    "dgx2-fp32",
    "dgxa100-amp",
    "dgxa100-tf32",
]
STAGES = {
    "bert": ["pretrain_phase1", "pretrain_phase2", "squad", "classify"],
    "electra": ["pretrain_phase1", "pretrain_phase2", "squad", "classify"],
    "transformer_xl": ["train", "eval"],
}

GOOD = """\
system: {name: Test box, gpus_per_node: 2, gpu: T4, gpu_memory_gb: 16, precision: fp32,
         peak_tflops: {fp32: 8.1}}
models:
  bert:
    pretrain_phase1:
      gpus: 2
      global_batch: 32
      train: {batch_size: 8, accumulation: 2, lr: 1e-3}
"""


def cli(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(presets.PATH_ENV, str(tmp_path))
    return tmp_path


# --- the two acceptance commands -------------------------------------------------------------


def test_show_dgx2_amp_electra_json():
    result = cli("presets", "show", "dgx2-amp", "--model", "electra", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    p1 = shown["models"]["electra"]["pretrain_phase1"]
    assert (p1["batch_size"], p1["accumulation"], p1["gpus"], p1["lr"]) == (176, 24, 16, 6e-3)
    assert p1["global_batch"] == 67584 and p1["lr_per_gpu"] is False
    assert list(shown["models"]) == ["electra"]


def test_show_dgx1_16g_amp_bert_table():
    result = cli("presets", "show", "dgx1-16g-amp", "--model", "bert")
    assert result.exit_code == 0, result.output
    assert "pretrain_phase1" not in result.stderr  # the table is the result: stdout
    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells:
            rows[cells[0]] = cells[1:]
    header = next(line for line in result.stdout.splitlines() if "pretrain_phase1" in line)
    assert [c.strip() for c in header.split("┃")[2:-1]] == STAGES["bert"]
    assert rows["micro-batch (seq)"][0] == "60"
    assert rows["accumulation"][0] == "128"
    assert rows["learning rate"][0] == "7.5e-4 per GPU" and rows["effective lr"][0] == "6e-3"
    assert rows["global batch (seq)"][0] == "61,440"


# --- the shipped numbers (shared/notes/nvidia-presets.md) ---------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_preset_covers_every_model_and_stage(name):
    preset = presets.load(name)
    assert {m: list(s) for m, s in preset.models.items()} == STAGES
    for stages in preset.models.values():
        for stage in stages.values():
            assert stage.get("train.precision") == preset.system.precision
            assert stage.global_batch == stage.section["global_batch"]
    assert preset.system.peak() > 0


# (preset, model, stage) -> (gpus, micro-batch, accumulation, lr, warmup steps, steps)
PUBLISHED = {
    ("dgxa100-amp", "electra", "pretrain_phase1"): (8, 176, 48, 6e-3, 2000, 10000),
    ("dgxa100-amp", "electra", "pretrain_phase2"): (8, 24, 144, 4e-3, 200, 933),
    ("dgxa100-tf32", "electra", "pretrain_phase1"): (8, 88, 96, 6e-3, 2000, 10000),
    ("dgx2-fp32", "electra", "pretrain_phase2"): (16, 12, 144, 4e-3, 200, 933),
    ("dgx1-16g-amp", "electra", "pretrain_phase1"): (8, 88, 96, 6e-3, 2000, 10000),
    ("dgx1-32g-fp32", "electra", "pretrain_phase1"): (8, 40, 211, 6e-3, 2000, 10000),
    ("dgx1-16g-fp32", "electra", "pretrain_phase2"): (8, 6, 576, 4e-3, 200, 933),
    ("dgxa100-amp", "bert", "pretrain_phase1"): (8, 312, 32, 8.12e-4, 2000, 5774),
    ("dgxa100-tf32", "bert", "pretrain_phase2"): (8, 22, 192, 5e-4, 200, 1514),
    ("dgx2-amp", "bert", "pretrain_phase1"): (16, 60, 64, 3.75e-4, 2133, 7506),
    ("dgx2-fp32", "bert", "pretrain_phase2"): (16, 6, 320, 2.5e-4, 200, 1668),
    ("dgx1-32g-amp", "bert", "pretrain_phase2"): (8, 10, 384, 5e-4, 213, 1668),
    ("dgx1-16g-fp32", "bert", "pretrain_phase1"): (8, 32, 256, 7.5e-4, 2000, 7038),
    ("dgxa100-amp", "transformer_xl", "train"): (8, 32, 1, 0.01, 1000, 40000),
    ("dgx2-amp", "transformer_xl", "train"): (16, 16, 1, 0.01, 1000, 40000),
    ("dgx1-16g-amp", "transformer_xl", "train"): (8, 16, 2, 0.01, 1000, 40000),
}


@pytest.mark.parametrize("key", sorted(PUBLISHED))
def test_published_recipes_are_encoded_exactly(key):
    name, model, stage_name = key
    stage = presets.load(name).stage(model, stage_name)
    got = tuple(
        stage.get(k)
        for k in ("train.batch_size", "train.accumulation", "train.lr", "train.warmup_steps")
    )
    assert (stage.gpus, *got, stage.get("train.steps")) == PUBLISHED[key]
    assert not stage.derived


def test_recipe_details_beyond_batch_and_lr():
    electra = presets.load("dgx2-amp").stage("electra", "pretrain_phase1")
    assert [electra.get(f"train.{k}") for k in ("beta1", "beta2", "decay_power", "clip_norm")] == [
        0.878,
        0.974,
        0.5,
        1.0,
    ]
    assert electra.get("train.optimizer") == "lamb" and electra.get("train.xla") is True
    squad = presets.load("dgx1-16g-fp32").stage("electra", "squad")
    assert [
        squad.get(k)
        for k in (
            "train.batch_size",
            "train.lr",
            "train.layer_decay",
            "train.warmup_proportion",
            "train.epochs",
            "data.eval_batch_size",
        )
    ] == [8, 3e-4, 0.8, 0.05, 2.0, 256]
    bert_squad = presets.load("dgx2-amp").stage("bert", "squad")
    assert bert_squad.summary()["effective_lr"] == 6e-5  # 3.75e-6 per GPU x 16
    txl = presets.load("dgxa100-tf32").stage("transformer_xl", "train")
    assert [txl.get(f"train.{k}") for k in ("schedule", "min_lr_ratio", "clip_norm")] == [
        "cosine",
        0.1,
        0.25,
    ]


def test_derived_stages_are_marked_and_keep_the_published_global_batch():
    derived = {
        (name, model, stage)
        for name in SHIPPED
        for model, stages in presets.load(name).models.items()
        for stage, s in stages.items()
        if s.derived
    }
    # Transformer-XL's batch_chunk is published for amp on DGX A100, DGX-2 and DGX-1 16 GB only.
    assert derived == {
        ("dgxa100-tf32", "transformer_xl", "train"),
        ("dgx2-fp32", "transformer_xl", "train"),
        ("dgx1-16g-fp32", "transformer_xl", "train"),
        ("dgx1-32g-amp", "transformer_xl", "train"),
        ("dgx1-32g-fp32", "transformer_xl", "train"),
    }
    for name, model, stage in derived:
        assert presets.load(name).stage(model, stage).global_batch == 256


def test_dgx1_16g_and_32g_share_the_bert_and_electra_recipes():
    small, large = presets.load("dgx1-16g-amp"), presets.load("dgx1-32g-amp")
    for model in ("bert", "electra"):
        for stage in STAGES[model]:
            assert small.stage(model, stage).section == large.stage(model, stage).section


def test_cpu_presets_are_ours_bf16_without_xla():
    for name, precision in (("cpu-bf16", "bf16"), ("cpu-fp32", "fp32")):
        preset = presets.load(name)
        assert (
            preset.system.gpu is None
            and preset.system.peak() == {"bf16": 0.38, "fp32": 0.2}[precision]
        )
        for stages in preset.models.values():
            for stage in stages.values():
                assert stage.gpus == 1 and stage.get("train.xla") is False
                assert stage.get("train.precision") == precision
                assert stage.get("model.size") == "tiny"


def test_peak_tflops_per_precision():
    assert presets.load("dgxa100-tf32").system.peak() == 156.0
    assert presets.load("dgxa100-amp").system.peak() == 312.0
    assert presets.load("dgx2-fp32").system.peak() == 15.7
    assert presets.load("dgx2-fp32").system.peak("amp") == 125.0


# --- rederive ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nodes, accumulation, lr",
    [(1, 128, 7.5e-4), (4, 32, 1.875e-4), (16, 8, 4.6875e-5), (32, 4, 2.34375e-5)],
)
def test_rederive_matches_nvidias_multi_node_table(nodes, accumulation, lr):
    """B2 configurations.yml, DGX-1, phase 1: lr and acc scale with the node count."""
    section = presets.load("dgx1-16g-amp").stage("bert", "pretrain_phase1").section
    new, notes = presets.rederive(section, 8 * nodes)
    assert new["gpus"] == 8 * nodes
    assert new["train"]["batch_size"] == 60
    assert new["train"]["accumulation"] == accumulation
    assert new["train"]["lr"] == lr  # exactly, not approximately
    assert presets.global_batch(new) == 61440
    assert f"per-GPU lr 7.5e-4 -> {presets.fmt_lr(lr)}" in notes[0]


def test_rederive_shrinks_the_micro_batch_when_the_accumulation_does_not_divide():
    # ELECTRA DGX-1 fp32: 40 x 211 x 8 = 67,520; on 16 GPUs 67,520 / (16 x 40) is not whole.
    section = presets.load("dgx1-16g-fp32").stage("electra", "pretrain_phase1").section
    new, notes = presets.rederive(section, 16)
    assert (new["train"]["batch_size"], new["train"]["accumulation"]) == (20, 211)
    assert new["train"]["lr"] == 6e-3  # absolute: unchanged
    assert notes == [
        "16 GPUs instead of the preset's 8: micro-batch 40 -> 20 and accumulation 211 -> 211 "
        "keep the global batch 67,520; lr 6e-3 is absolute and stays"
    ]


def test_rederive_never_grows_the_micro_batch():
    section = presets.load("dgx1-16g-amp").stage("bert", "pretrain_phase1").section
    new, _ = presets.rederive(section, 3)  # 61,440 / 3 = 20,480 per GPU
    assert (new["train"]["batch_size"], new["train"]["accumulation"]) == (40, 512)
    assert new["train"]["batch_size"] <= 60


def test_rederive_reports_an_impossible_split():
    section = presets.load("dgx1-16g-amp").stage("bert", "pretrain_phase1").section
    with pytest.raises(
        UserError,
        match=r"the global batch 61,440 cannot be split over 7 GPUs with a micro-batch of at most 60 \(choose one with --set train.batch_size=N --set train.accumulation=M\)",
    ):
        presets.rederive(section, 7)


# --- broken preset files: path and key, exit 2 ----------------------------------------------


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "lr: 1e-3",
            "lrr: 1e-3",
            "models.bert.pretrain_phase1: unknown config key 'train.lrr'; did you mean 'train.lr'?",
        ),
        (
            "batch_size: 8",
            "batch_size: eight",
            "models.bert.pretrain_phase1: train.batch_size='eight' is not an integer",
        ),
        ("lr: 1e-3", "lr: 1e-3, optimizer: sgd", "train.optimizer='sgd' is not one of lamb, adamw"),
        (
            "accumulation: 2",
            "accumulation: 0",
            "models.bert.pretrain_phase1: train.accumulation=0 must be >= 1",
        ),
        (
            "global_batch: 32",
            "global_batch: 30",
            "global_batch=30 but batch_size x accumulation x gpus = 32 (fix one of them)",
        ),
        (
            "gpu: T4, ",
            "",
            "system.gpu: missing (required: name, gpus_per_node, gpu, gpu_memory_gb, precision, peak_tflops)",
        ),
        (
            "precision: fp32,",
            "precision: fp8,",
            "system.precision: 'fp8' is not one of fp32, tf32, amp, bf16",
        ),
        (
            "lr: 1e-3",
            "lr: 1e-3, precision: amp",
            "train.precision='amp' differs from system.precision 'fp32'",
        ),
        (
            "      gpus: 2\n",
            "",
            "models.bert.pretrain_phase1: gpus=None must be a positive integer",
        ),
        (
            "      gpus: 2\n",
            "      gpus: 2\n      nodes: 1\n",
            "unknown key 'nodes' (allowed: data, derived, global_batch, gpus, model, train)",
        ),
        ("models:", "modles:", "modles: unknown top-level key (allowed: models, system)"),
        ("train: {", "train: [", "is not valid YAML at line"),
    ],
)
def test_a_broken_preset_file_is_reported_with_its_path_and_key(user_dir, old, new, message):
    assert old in GOOD
    path = user_dir / "broken.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(UserError) as err:
        presets.load("broken")
    assert str(path) in str(err.value) and message in str(err.value)
    result = cli("presets", "show", "broken")
    assert result.exit_code == 2
    assert result.stderr.startswith("nvlm: error: preset file ")
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_user_presets_by_dir_and_by_path(user_dir, tmp_path):
    (user_dir / "box-fp32.yaml").write_text(GOOD)
    assert presets.available()["box-fp32"] == user_dir / "box-fp32.yaml"
    assert presets.load("box-fp32").system.name == "Test box"
    # A user directory comes first, so a file there shadows a shipped preset of the same name.
    (user_dir / "dgx2-amp.yaml").write_text(GOOD)
    assert presets.load("dgx2-amp").system.name == "Test box"
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "mine.yaml").write_text(GOOD)
    assert presets.load(str(other / "mine.yaml")).name == "mine"
    with pytest.raises(UserError, match="preset file .*nope.yaml not found"):
        presets.load(str(other / "nope.yaml"))


# --- the CLI -----------------------------------------------------------------------------------


def test_list_json_names_every_preset_and_its_models():
    result = cli("presets", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [p["name"] for p in listed] == SHIPPED
    dgx2 = next(p for p in listed if p["name"] == "dgx2-amp")
    assert dgx2["system"]["gpus_per_node"] == 16 and dgx2["models"] == STAGES


def test_list_table_goes_to_stdout_one_row_per_preset():
    result = cli("presets", "list")
    assert result.exit_code == 0 and result.stderr == ""
    # `nvlm presets list | grep a100` finds whole rows: nothing wrapped onto a second line.
    a100 = [line for line in result.stdout.splitlines() if "a100" in line]
    assert len(a100) == 2 and all("8x A100-SXM4-40GB" in line for line in a100)
    assert all(name in result.stdout for name in SHIPPED)


@pytest.mark.parametrize("model", ["transformer-xl", "transformer_xl", "Transformer-XL"])
def test_show_accepts_both_spellings_of_transformer_xl(model):
    result = cli("presets", "show", "dgx1-16g-amp", "--model", model, "--json")
    assert result.exit_code == 0, result.output
    txl = json.loads(result.stdout)["models"]["transformer_xl"]
    assert (txl["train"]["batch_size"], txl["train"]["accumulation"]) == (16, 2)
    assert txl["eval"]["seq_len"] == 64 and txl["train"]["seq_len"] == 192


def test_show_marks_derived_stages():
    result = cli("presets", "show", "dgx1-32g-amp", "-m", "transformer-xl")
    assert result.exit_code == 0, result.output
    derived_row = next(line for line in result.stdout.splitlines() if line.startswith("│ derived"))
    assert re.findall(r"yes|no", derived_row) == ["yes", "no"]
    assert "derived = not published" in result.stderr  # a footnote: stderr


def test_show_squad_reports_epochs_and_warmup_proportion():
    result = cli("presets", "show", "dgxa100-amp", "--model", "bert", "--json")
    squad = json.loads(result.stdout)["models"]["bert"]["squad"]
    assert (squad["epochs"], squad["steps"], squad["warmup_proportion"]) == (2.0, None, 0.1)
    assert squad["effective_lr"] == 2.4e-4  # 3e-5 per GPU x 8


def test_unknown_preset_and_model_exit_2_listing_what_exists():
    result = cli("presets", "show", "dgx3-amp")
    assert result.exit_code == 2
    assert "unknown preset 'dgx3-amp' (available: cpu-bf16, cpu-fp32, dgx1-16g-amp" in result.stderr
    result = cli("presets", "show", "dgx2-amp", "--model", "gpt")
    assert result.exit_code == 2
    assert result.stderr == (
        "nvlm: error: preset dgx2-amp has no model 'gpt' (available: bert, electra, transformer_xl)\n"
    )


def test_help_has_examples_and_no_args_shows_help():
    for command in ("list", "show"):
        result = cli("presets", command, "--help")
        assert result.exit_code == 0
        assert "Examples" in result.output and f"nvlm presets {command}" in result.output
    assert "Usage:" in cli("presets").output

"""NVIDIA's published speed figures for `nvlm benchmark --compare`: shipped as validated data,
matched only to the configuration they were measured in, and a one-line reason when none fits."""

from __future__ import annotations

import copy
import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

import pytest
import yaml

from nvlm import presets
from nvlm.bench import published

# The point the issue names: ELECTRA-base SQuAD fine-tuning on one A100 in amp, batch 32.
ELECTRA_SQUAD = dict(
    kind="train",
    model="electra",
    size="base",
    task="squad",
    phase=None,
    seq_len=384,
    system="DGX A100",
    gpu="A100-SXM4-40GB",
    gpus=1,
    precision="amp",
    batch=32,
    metric="throughput",
)
# Every figure in shared/notes/nvidia-presets.md ("Published results to compare against").
FROM_THE_NOTES = {
    "e2-squad-train-dgxa100-1gpu-amp": (285, 317),
    "e2-squad-train-dgxa100-8gpu-amp": (1960, 2221),
    "e2-squad-train-dgx1-16g-1gpu-amp": (144, 154),
    "e2-squad-infer-dgxa100-amp-bs1": (166, 178),
    "e2-squad-infer-dgxa100-amp-bs1-latency-avg": (5.63, 6.035),
    "e2-pretrain-phase1-dgxa100-1gpu-amp": 955,
    "e2-pretrain-phase2-dgxa100-1gpu-amp": 171,
    "b1-squad-train-dgx1-32g-1gpu-amp": 31.8,
    "b1-squad-infer-dgx1-16g-amp-bs8": 112.55,
    "b1-squad-infer-dgx1-32g-amp-bs8": 108.45,
    "b1-squad-infer-dgx2-amp-bs8": 118.54,
    "x1-lm-train-dgxa100-8gpu-amp": 227502,
    "x1-lm-infer-dgxa100-amp-bs32": 21854.7,
}


def shipped_tree() -> dict:
    path = resources.files("nvlm") / "resources" / "published.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def only(tree_record: dict) -> dict:
    return {"figures": [tree_record]}


def first_record() -> dict:
    return copy.deepcopy(shipped_tree()["figures"][0])  # e2-squad-train-dgxa100-1gpu-amp


def test_the_shipped_file_loads_validates_and_holds_the_notes_figures():
    figures = published.figures()
    by_id = {f.id: f for f in figures}
    assert len(by_id) == len(figures) >= len(FROM_THE_NOTES)
    for figure_id, value in FROM_THE_NOTES.items():
        assert by_id[figure_id].value == value, figure_id
    assert all(f.source.strip() and f.collection in ("E2", "B1", "X1") for f in figures)
    assert published.figures() is figures  # loaded once


def test_the_file_ships_as_package_data():
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["nvlm"]
    assert any(fnmatch("resources/published.yaml", p) for p in patterns)
    assert (resources.files("nvlm") / "resources" / "published.yaml").is_file()


def test_every_figure_names_the_system_and_gpu_of_a_shipped_preset():
    shipped = {
        (p.system.name, p.system.gpu)
        for p in map(presets.load, sorted(presets.BUILTIN_DIR.glob("*.yaml")))
    }
    for figure in published.figures():
        assert (figure.system, figure.gpu) in shipped, figure.id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(speed=1), "(e2-squad-train-dgxa100-1gpu-amp): speed: unknown key"),
        (lambda r: r.pop("batch"), "batch: missing (null when the source does not state it)"),
        (lambda r: r.update(precision="fp16"), "precision: 'fp16' is not one of amp, tf32, fp32"),
        (lambda r: r.update(system="DGX-3"), "system: DGX-3 / A100-SXM4-40GB is no shipped preset"),
        (lambda r: r.update(value=[317, 285]), "value: [317, 285] is not a positive number or a"),
        (lambda r: r.update(gpus=0), "gpus: 0 is not a positive integer"),
        (lambda r: r.update(tgt_len=64), "tgt_len: does not apply to electra squad"),
        (lambda r: r.update(unit="tokens/s"), "unit: tokens/s does not fit throughput of electra"),
        (lambda r: r.update(task="pretrain", phase=2), "seq_len: phase 2 is seq 512, not 384"),
    ],
)
def test_a_malformed_record_is_refused_naming_the_record_and_the_key(change, message):
    record = first_record()
    change(record)
    with pytest.raises(published.PublishedDataError) as caught:
        published.parse(only(record), "published.yaml")
    assert str(caught.value).startswith("published.yaml: figures[0]")
    assert message in str(caught.value)


def test_a_duplicate_id_is_refused():
    with pytest.raises(published.PublishedDataError, match="id: .* is used twice"):
        published.parse({"figures": [first_record(), first_record()]}, "x.yaml")


def test_electra_squad_finetuning_on_one_a100_in_amp_matches_the_published_figure():
    (figure,) = published.matches(**ELECTRA_SQUAD)
    assert figure.id == "e2-squad-train-dgxa100-1gpu-amp"
    assert figure.describe() == (
        "NVIDIA E2, DGX A100 1x A100-SXM4-40GB amp, batch 32/GPU: 285-317 sequences/s"
    )
    assert published.system_of_preset("dgxa100-amp") == ELECTRA_SQUAD["system"]
    assert published.gpu_of_preset("dgxa100-amp") == ELECTRA_SQUAD["gpu"]


def test_fp32_or_eight_gpus_do_not_match_the_one_gpu_amp_figure():
    assert published.matches(**{**ELECTRA_SQUAD, "precision": "fp32"}) == []
    (eight,) = published.matches(**{**ELECTRA_SQUAD, "gpus": 8})
    assert eight.id == "e2-squad-train-dgxa100-8gpu-amp" and eight.value == (1960, 2221)
    assert published.matches(**{**ELECTRA_SQUAD, "batch": 16}) == []


def test_dgx1_figures_follow_the_gpu_memory_of_the_preset():
    point = dict(ELECTRA_SQUAD, kind="infer", model="bert", size="large", batch=8)
    for preset, value in (("dgx1-16g-amp", 112.55), ("dgx1-32g-amp", 108.45)):
        system, gpu = published.system_of_preset(preset), published.gpu_of_preset(preset)
        (figure,) = published.matches(**{**point, "system": system, "gpu": gpu})
        assert figure.value == value


def test_transformer_xl_matches_on_segment_and_memory_length():
    point = dict(
        ELECTRA_SQUAD, kind="infer", model="transformer_xl", task="lm", seq_len=64, mem_len=640
    )
    (figure,) = published.matches(**point)
    assert figure.id == "x1-lm-infer-dgxa100-amp-bs32" and figure.value == 21854.7
    assert published.matches(**{**point, "mem_len": 192}) == []
    note = published.no_match_note(**{**point, "mem_len": 192})
    assert ": NVIDIA published this only at tgt 64 / mem 640 (" in note


def test_no_match_note_for_the_cpu_bf16_preset():
    system = published.system_of_preset("cpu-bf16")
    assert system == "CPU (2 cores)"
    point = {**ELECTRA_SQUAD, "system": system, "gpu": None, "precision": "bf16", "batch": 8}
    assert published.matches(**point) == []
    note = published.no_match_note(**point)
    assert note == (
        "no published figure for electra-base squad train (seq 384) on CPU (2 cores) x1, bf16, "
        "batch 8/GPU: NVIDIA published none on CPU (2 cores) (published figures exist for: "
        "dgxa100-amp x1 batch 32, dgxa100-amp x8 batch 32, dgxa100-tf32 x1 batch 32, "
        "dgxa100-tf32 x8 batch 32, dgx1-16g-amp x1 batch 16)"
    )


def test_no_match_note_without_a_preset():
    assert published.system_of_preset(None) is None
    point = {**ELECTRA_SQUAD, "system": None, "gpu": None}
    assert published.matches(**point) == []
    note = published.no_match_note(**point)
    assert note.startswith(
        "no published figure for electra-base squad train (seq 384) on an unknown system x1, "
        "amp, batch 32/GPU: no --preset given, so the system is unknown (published figures "
        "exist for: dgxa100-amp x1 batch 32, "
    )
    assert "\n" not in note


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"gpus": 4}, "NVIDIA published this for 1 or 8 GPU(s), not 4"),
        ({"batch": 8}, "NVIDIA's batch per GPU is 32, not 8"),
        ({"precision": "fp32"}, "NVIDIA published none in fp32 on DGX A100"),
        ({"size": "small"}, "NVIDIA published no throughput figure for this"),
    ],
)
def test_no_match_note_names_what_differs(change, why):
    note = published.no_match_note(**{**ELECTRA_SQUAD, **change})
    assert f": {why} (published figures exist for: " in note


def test_no_match_note_is_not_for_a_point_that_matches():
    with pytest.raises(ValueError, match="published figures match"):
        published.no_match_note(**ELECTRA_SQUAD)


def test_ratio_of_a_single_figure_and_of_a_range():
    by_id = {f.id: f for f in published.figures()}
    assert by_id["e2-pretrain-phase1-dgxa100-1gpu-amp"].ratio(477.5) == (
        "0.50x NVIDIA's 955 sequences/s"
    )
    assert by_id["e2-squad-train-dgxa100-1gpu-amp"].ratio(301.0) == (
        "1.00x the middle (301) of NVIDIA's 285-317 sequences/s"
    )
    assert by_id["e2-squad-infer-dgxa100-amp-bs1-latency-avg"].ratio(11.665) == (
        "2.00x the middle (5.832) of NVIDIA's 5.63-6.035 ms (latency: below 1x is faster)"
    )
    assert by_id["x1-lm-train-dgxa100-8gpu-amp"].ratio(113751) == (
        "0.50x NVIDIA's 227,502 tokens/s"
    )


@pytest.mark.parametrize("ours", [0, -1.0, float("nan"), float("inf"), True])
def test_ratio_refuses_a_figure_that_is_no_measurement(ours):
    with pytest.raises(ValueError, match="measured figure must be"):
        published.figures()[0].ratio(ours)


def test_a_figure_without_a_stated_batch_matches_any_batch_and_says_so(monkeypatch):
    record = first_record()
    record["batch"] = None
    figures = published.parse(only(record), "published.yaml")
    monkeypatch.setattr(published, "figures", lambda: figures)
    (figure,) = published.matches(**{**ELECTRA_SQUAD, "batch": 7})
    assert figure.describe().endswith("amp, batch not stated: 285-317 sequences/s")
    assert figure.ratio(301) == (
        "1.00x the middle (301) of NVIDIA's 285-317 sequences/s; published batch not stated"
    )

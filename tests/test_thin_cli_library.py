"""The library calls behind `nvlm data` and `nvlm benchmark` (what their thin commands call), and
the size of those command modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nvlm.bench.axes import parse_list, precisions, whole_numbers
from nvlm.bench.peaks import parse_precisions
from nvlm.data.demo import write_demo_set
from nvlm.data.verify import bad_summary, refuse_bad
from nvlm.errors import UserError


def _bad(name: str, problems: int) -> dict:
    return {"name": name, "problems": [f"problem {i}" for i in range(problems)]}


def test_bad_summary_shows_a_few_files_and_problems_and_counts_the_rest():
    bad = [_bad("a.hdf5", 3), _bad("b.hdf5", 1), *(_bad(f"c{i}.hdf5", 1) for i in range(4))]
    assert bad_summary(bad) == (
        "a.hdf5: problem 0; problem 1 (+1 more), b.hdf5: problem 0, c0.hdf5: problem 0, "
        "c1.hdf5: problem 0, and 2 more"
    )


def test_a_bad_verify_report_is_one_user_error_with_the_rebuild_hint(tmp_path):
    refuse_bad({"bad": [], "files": 2}, tmp_path)  # all good: nothing raised
    with pytest.raises(UserError) as caught:
        refuse_bad({"bad": [_bad("s.hdf5", 1)], "files": 2}, tmp_path)
    assert str(caught.value).startswith(f"1 of 2 shard(s) in {tmp_path} are bad: s.hdf5: problem 0")
    assert "re-run the same `nvlm data pretraining` command" in str(caught.value)
    with pytest.raises(UserError, match="run nvlm data lm again"):
        refuse_bad(
            {"bad": [_bad("s.hdf5", 1)], "files": 1, "rebuild_hint": "run nvlm data lm again"},
            tmp_path,
        )


def test_demo_set_refuses_an_unknown_squad_version_and_writes_nothing(tmp_path):
    out = tmp_path / "demo"
    with pytest.raises(UserError, match=r"--squad 3.0 is not a SQuAD version \(use 1.1 or 2.0\)"):
        write_demo_set(out, documents=5, seed=0, squad="3.0")
    assert not out.exists()


def test_demo_set_checks_every_output_before_writing_any(tmp_path):
    (tmp_path / "squad-dev.json").write_text("mine")
    with pytest.raises(UserError, match="squad-dev.json"):
        write_demo_set(tmp_path, documents=5, seed=0, squad="1.1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["squad-dev.json"]
    assert (tmp_path / "squad-dev.json").read_text() == "mine"


def test_demo_set_writes_the_corpus_and_squad_files_it_reports(tmp_path):
    summary = write_demo_set(tmp_path, documents=5, seed=0, squad="2.0")
    assert summary["documents"] == 5 and summary["train_questions"] > 0
    assert {p.name for p in tmp_path.iterdir()} == {
        "corpus.txt",
        "squad-train.json",
        "squad-dev.json",
    }


def test_sweep_axes_keep_order_drop_repeats_and_name_the_option():
    assert whole_numbers(" 8, 2,8 ", "--batch-sizes") == (8, 2)
    assert whole_numbers(None, "--gpus") is None
    assert precisions(None) == (None,)  # the preset's
    assert precisions("BF16,fp32") == ("bf16", "fp32")
    for text in ("0", "two", ",", "1,-2"):
        with pytest.raises(UserError, match="--gpus .*: give comma-separated whole numbers >= 1"):
            whole_numbers(text, "--gpus")
    with pytest.raises(UserError, match="'fp8' is not one of fp32, tf32, amp, bf16"):
        parse_list("fp32,fp8", "--precision", str, ("fp32", "tf32", "amp", "bf16"))


def test_peak_precisions_are_checked_before_anything_is_measured():
    assert parse_precisions(" BF16 , amp") == ["bf16", "amp"]
    for text in ("", " , ", "fp32,fp8"):
        with pytest.raises(UserError, match="choose from fp32, tf32, bf16, amp"):
            parse_precisions(text)


CLI = Path(__file__).parent.parent / "nvlm" / "cli"


@pytest.mark.parametrize("package", ["data", "benchmark"])
def test_data_and_benchmark_are_one_module_per_command(package):
    assert len(sorted((CLI / package).glob("*.py"))) >= 5  # not one big module


def test_every_cli_module_stays_thin():
    # Issue 15: no CLI module over ~200 lines, no function (its options included) over ~80.
    paths = sorted(CLI.rglob("*.py"))
    assert len(paths) > 20
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 200, path
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef):
                assert node.end_lineno - node.lineno + 1 <= 80, f"{path}:{node.name}"

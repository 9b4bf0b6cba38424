"""`nvlm data demo-corpus` and the help of every `nvlm data` command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from nvlm.cli.main import app
from nvlm.data.demo_corpus import demo_documents

runner = CliRunner()


def test_demo_corpus_is_deterministic_and_repeats_facts(tmp_path):
    for name in ("a", "b"):
        result = runner.invoke(
            app,
            [
                "data",
                "demo-corpus",
                "--out",
                str(tmp_path / name),
                "--documents",
                "300",
                "--seed",
                "4",
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "corpus.txt").read_bytes() == (
        tmp_path / "b" / "corpus.txt"
    ).read_bytes()
    summary = json.loads(result.stdout)
    assert summary["documents"] == 300 and summary["sentences"] > 1500
    docs = (tmp_path / "a" / "corpus.txt").read_text().split("\n\n")
    assert len(docs) == 300 and all(
        line.endswith(".") for d in docs for line in d.strip().split("\n")
    )
    # Facts recur: the same "X loves to eat Y." sentence shows up in several documents.
    sentences = [s for d in demo_documents(300, 4) for s in d]
    repeated = {s for s in sentences if sentences.count(s) > 1}
    assert len(repeated) > 50
    assert demo_documents(50, 1) != demo_documents(50, 2)


@pytest.mark.parametrize(
    "command", ["vocab", "pretraining", "verify", "download", "wikipedia", "demo-corpus"]
)
def test_every_data_command_has_help_with_an_example(command):
    result = runner.invoke(app, ["data", command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout and f"nvlm data {command}" in result.stdout

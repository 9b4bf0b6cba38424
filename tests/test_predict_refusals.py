"""`nvlm predict` refuses an option that does not apply to what it is doing (issue 16): one line
naming the combination and what the option is for, exit 2, nothing printed on stdout, and before
a model is loaded (the --init of these tests does not exist: a refusal that came after loading
would name it instead). `--task score --text` scores one text as `--input` scores a line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import get_args

import pytest
from helpers import error_line, invoke, json_of

from nvlm import registry
from nvlm.tasks import prediction

TXL = "transformer-xl"


def refused(tmp_path: Path, model: str, *args) -> str:
    """The one error line of `nvlm predict --model MODEL --init <missing> ARGS`, after checking
    that nothing was printed on stdout and nothing written."""
    result = invoke("predict", "--model", model, "--init", tmp_path / "no-such-run", *args)
    line = error_line(result)
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []
    return line


@pytest.mark.parametrize(
    ("model", "args", "message"),
    [
        # The three cases of the issue: --next on a scoring pipeline, on BERT features.
        (TXL, ["--input", "-", "--next", "3"],
         "--next does not apply to --model transformer-xl --task score (the default with "
         "--input): it is for --task next (the N most probable words after --text)"),
        ("bert", ["--text", "the cat", "--next", "3"],
         "--next does not apply to --model bert --task features (the default with --text): it "
         "is for --task next (the N most probable words after --text), which --model bert does "
         "not predict (tasks: squad, features, classify, fill-mask)"),
        # Sampling options without --generate.
        (TXL, ["--text", "the cat", "--next", "3", "--seed", "0"],
         "--seed does not apply to --model transformer-xl --task next (the default with --text):"
         " it is for --task generate (sampling)"),
        (TXL, ["--input", "-", "--top-k", "2"],
         "--top-k does not apply to --model transformer-xl --task score (the default with "
         "--input): it is for --task generate (sample among the K most probable words)"),
        (TXL, ["--text", "the cat", "--task", "next", "--generate", "3"],
         "--generate does not apply to --model transformer-xl --task next: it is for --task "
         "generate (continue --text by K words)"),
        (TXL, ["--text", "the cat", "--task", "generate", "--next", "3"],
         "--next does not apply to --model transformer-xl --task generate: it is for --task next "
         "(the N most probable words after --text)"),
        # Options of question answering and of features elsewhere.
        (TXL, ["--question", "who?", "--context", "the cat sat"],
         "--question does not apply to --model transformer-xl --task next (the default): it is "
         "for --task squad (with --context), which --model transformer-xl does not predict "
         "(tasks: next, generate, score)"),
        ("bert", ["--question", "who?", "--context", "the cat sat", "--layer", "0"],
         "--layer does not apply to --model bert --task squad (the default): it is for --task "
         "features"),
        ("bert", ["--question", "who?", "--context", "the cat sat", "--text", "the cat"],
         "--question does not apply to --model bert --task features (the default with --text): "
         "it is for --task squad (with --context)"),
        ("bert", ["--task", "squad", "--text", "the cat"],
         "--text does not apply to --model bert --task squad: it is for --task features or "
         "--task classify or --task fill-mask"),
        ("bert", ["--text", "the cat", "--top-k", "3"],
         "--top-k does not apply to --model bert --task features (the default with --text): it "
         "is for --task squad (the N best answers) or --task fill-mask (the K most probable "
         "tokens per [MASK])"),
        ("bert", ["--input", "-", "--task", "features", "--null-threshold", "1"],
         "--null-threshold does not apply to --model bert --task features: it is for --task "
         "squad (SQuAD v2.0 'no answer')"),
        ("electra", ["--question", "who?", "--context", "the cat sat", "--pooled"],
         "--pooled does not apply to --model electra --task squad (the default): it is for "
         "--task features"),
        ("electra", ["--input", "-", "--temperature", "0.5"],
         "--temperature does not apply to --model electra --task squad (the default): it is for "
         "--task generate (sampling), which --model electra does not predict (tasks: squad, "
         "features, classify, fill-mask)"),
    ],
)  # fmt: skip
def test_an_option_of_another_task_is_refused_before_a_model_is_loaded(
    tmp_path, model, args, message
):
    assert refused(tmp_path, model, *args) == f"nvlm: error: {message}"


@pytest.mark.parametrize(
    ("model", "task", "message"),
    [
        ("bert", "mlm", "model bert cannot predict task 'mlm' (tasks: squad, features, "
                        "classify, fill-mask; 'mlm' is a task of nvlm pretrain or eval)"),
        ("electra", "mlm", "model electra cannot predict task 'mlm' (tasks: squad, features, "
                           "classify, fill-mask; 'mlm' is a task of nvlm pretrain or eval)"),
        ("electra", "score", "model electra cannot predict task 'score' (tasks: squad, "
                             "features, classify, fill-mask)"),
        ("bert", "score", "model bert cannot predict task 'score' (tasks: squad, features, "
                          "classify, fill-mask)"),
        (TXL, "lm", "model transformer-xl cannot predict task 'lm' (tasks: next, generate, "
                    "score; 'lm' is a task of nvlm pretrain or eval)"),
        (TXL, "squad", "model transformer-xl cannot predict task 'squad' (tasks: next, "
                       "generate, score)"),
    ],
)  # fmt: skip
def test_a_task_the_model_cannot_predict_is_refused_naming_the_tasks_it_can(
    tmp_path, model, task, message
):
    assert (
        refused(tmp_path, model, "--task", task, "--text", "the cat") == f"nvlm: error: {message}"
    )


@pytest.mark.parametrize(
    ("model", "args"),
    [("bert", ["--task", "features"]), (TXL, ["--task", "score"]), (TXL, [])],
)
def test_batch_size_is_refused_where_nothing_is_batched(tmp_path, model, args):
    line = refused(tmp_path, model, "--text", "the cat", "--batch-size", "4", *args)
    if args:  # one --text of a task that batches --input lines
        assert line.endswith(" with one --text: it is for --input FILE|- (lines per forward pass)")
        assert line.startswith(f"nvlm: error: --batch-size does not apply to --model {model} ")
    else:  # --task next: one context, whatever the input
        assert line == (
            "nvlm: error: --batch-size does not apply to --model transformer-xl --task next (the "
            "default with --text): it is for --task score (with --input)"
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "score"], "--task score needs exactly one of --text TEXT or --input FILE|- "
                              '(a text per line, or JSONL {"text"})'),
        (["--task", "score", "--text", "the cat", "--input", "-"],
         '--task score needs exactly one of --text TEXT or --input FILE|- (a text per line, or '
         'JSONL {"text"})'),
        (["--task", "score", "--text", " "], "--text is empty (pass the text to score)"),
        (["--generate", "3"], "--task generate needs --text TEXT (the context), e.g. --text TEXT "
                              "--generate K"),
        (["--next", "3", "--text", ""], "--text is empty (pass the context)"),
    ],
)  # fmt: skip
def test_a_language_model_task_without_its_text_is_refused(tmp_path, args, message):
    assert refused(tmp_path, TXL, *args) == f"nvlm: error: {message}"


def test_the_task_help_lists_exactly_what_each_model_can_predict():
    from nvlm.cli.predict import Task

    help_text = get_args(Task)[1].help
    listed = {}
    for part in help_text.split(". ")[0].split("; "):  # "model: task (note) | task; ..."
        model, tasks = part.split(": ", 1)
        listed[model] = {re.sub(r"\(.*?\)", "", t).strip() for t in tasks.split("|")}
    assert listed == {
        name: set(prediction.predict_tasks(registry.get(name))) for name in registry.names()
    }


# --- --task score --text on a tiny Transformer-XL -----------------------------------------------
TINY = [
    "--preset", "cpu-fp32", "--set", "model.size=tiny", "--set", "data.seq_len=16",
    "--set", "model.mem_len=16", "--set", "train.batch_size=4", "--set", "train.accumulation=1",
    "--set", "train.warmup_steps=1",
]  # fmt: skip


@pytest.fixture(scope="module")
def txl_run(txl_corpus, tmp_path_factory) -> Path:
    """A Transformer-XL trained for 2 steps: its scores need not be good, only the same."""
    run = tmp_path_factory.mktemp("txl-score") / "run"
    json_of(invoke("pretrain", "--model", TXL, "--data", txl_corpus, "--out", run, "--steps", 2,
                   *TINY, "--json"))  # fmt: skip
    return run


def test_score_of_one_text_prints_what_input_prints_for_that_line(txl_run, tmp_path):
    text = "the cat sat on the mat ."
    one = invoke("predict", "--model", TXL, "--init", txl_run, "--task", "score", "--text", text)
    assert one.exit_code == 0, one.output
    assert len(one.stdout.splitlines()) == 1  # one JSON line, as a pipeline prints it
    scores = json.loads(one.stdout)
    assert scores["line"] == 1 and scores["tokens"] == 8 and scores["unk"] == 0
    assert scores["perplexity"] > 1
    lines = tmp_path / "lines.txt"
    lines.write_text(text + "\n")
    piped = invoke("predict", "--model", TXL, "--init", txl_run, "--input", lines)
    assert piped.exit_code == 0, piped.output
    assert one.stdout == piped.stdout

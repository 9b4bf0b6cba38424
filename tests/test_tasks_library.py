"""The library under `nvlm eval|predict|finetune`, called without the CLI: what a program that
imports nvlm gets (the same checks, messages and results as the commands)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from nvlm.errors import UserError
from nvlm.tasks import prediction
from nvlm.tasks.evaluation import EvalRequest, evaluate
from nvlm.tasks.pipeline import run_pipeline
from nvlm.tasks.squad.evaluation import score_predictions, squad_table_rows

SQUAD = Path(__file__).parent / "fixtures" / "squad" / "tiny-v1.1.json"


class Encoder:
    """Stands in for a plugin where only its tasks are read."""

    name = "stub"
    tasks = ("squad",)


def test_pipeline_answers_each_line_in_order_with_bad_lines_in_place(capsys):
    lines = b'{"question": "who?", "context": "Harry."}\nnot json\n{"id": 7, "question": "q"}\n'

    def handle(items):
        return [{"id": item["id"], "answer": item["context"]} for item in items]

    failed = run_pipeline(io.BytesIO(lines), 8, prediction.parse_qa, handle)
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert failed == 2
    assert out[0] == {"id": 1, "answer": "Harry."}
    assert out[1]["line"] == 2 and out[1]["error"].startswith("line 2: ")
    assert out[2] == {"line": 3, "error": "line 3: missing 'context'"}


def test_prediction_options_are_checked_before_a_model_is_loaded(tmp_path):
    both = prediction.PredictRequest("run", question="q", context="c", input="-")
    with pytest.raises(UserError, match=r"^give either --question/--context or --input, not both$"):
        prediction.qa_input(both)
    features = prediction.PredictRequest("run", text="the cat")
    with pytest.raises(
        UserError, match=r"^model bert cannot predict task 'features' \(tasks: squad\)$"
    ):
        prediction.encoder_task(Encoder(), "bert", features)
    missing = prediction.PredictRequest("run", input=str(tmp_path / "no"))
    with pytest.raises(
        UserError, match=r"--input .*/no does not exist \(pass a file or - for stdin\)$"
    ):
        prediction.qa_input(missing)


def test_answer_lines_put_the_answer_first_and_its_figures_after():
    answer = {
        "no_answer": False,
        "answer": "Harry",
        "score": 3.5,
        "probability": 0.9,
        "start": 11,
        "end": 16,
        "alternatives": [{}, {"answer": "Canada", "probability": 0.1, "start": 34, "end": 40}],
    }
    shown, notes = prediction.answer_lines(answer)
    assert shown == "Harry"
    assert notes == [
        "score 3.5  probability 0.9  characters 11-16",
        "  alternative: 'Canada' (probability 0.1, characters 34-40)",
    ]
    assert prediction.answer_lines({"no_answer": True}) == ("(no answer)", [])


def test_squad_evaluation_refuses_a_missing_dev_file_before_loading_a_model(tmp_path):
    request = EvalRequest("squad", "runs/none", tmp_path / "dev.json")
    with pytest.raises(UserError) as refused:
        evaluate(Encoder(), request)
    assert (
        str(refused.value)
        == f"--data {tmp_path / 'dev.json'} does not exist (pass the SQuAD dev JSON)"
    )


def test_a_predictions_file_is_scored_without_a_model(tmp_path):
    data = json.loads(SQUAD.read_text())
    gold = {
        q["id"]: q["answers"][0]["text"]
        for a in data["data"]
        for p in a["paragraphs"]
        for q in p["qas"]
    }
    (tmp_path / "predictions.json").write_text(json.dumps(gold))
    result = score_predictions(SQUAD, tmp_path / "predictions.json", None, None)
    assert result == {"task": "squad", "version": "1.1", "exact_match": 100.0, "f1": 100.0}
    assert squad_table_rows(result) == [("exact_match", 100.0), ("f1", 100.0)]

"""Reading and checking SQuAD JSON: what a user sees for each kind of bad file."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from nvlm.errors import UserError
from nvlm.tasks.squad import read_squad

FIXTURES = Path(__file__).parent / "fixtures" / "squad"
V1 = FIXTURES / "tiny-v1.1.json"
V2 = FIXTURES / "tiny-v2.0.json"


def write(tmp_path: Path, obj) -> Path:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def v1_obj() -> dict:
    return json.loads(V1.read_text(encoding="utf-8"))


def v2_obj() -> dict:
    return json.loads(V2.read_text(encoding="utf-8"))


def qa(obj: dict, qid: str) -> dict:
    for article in obj["data"]:
        for paragraph in article["paragraphs"]:
            for record in paragraph["qas"]:
                if record["id"] == qid:
                    return record
    raise KeyError(qid)


def test_reads_v1_flat_examples_in_file_order():
    ds = read_squad(V1)
    assert ds.version == "1.1" and not ds.is_v2
    assert [ex.qid for ex in ds.examples][:3] == ["v1-a1", "v1-a2", "v1-a3"]
    assert len(ds) == 13 and len(ds.contexts) == 3
    # Questions on one paragraph share it (tokenized once).
    assert {ex.context_id for ex in ds.examples[:4]} == {0}
    assert ds.examples[0].context is ds.contexts[0]
    assert ds.examples[0].answers == (("Odile Brannock", 109),)
    assert ds.gold_answers()["v1-a3"] == ["the annual Lantern Regatta", "Lantern Regatta"]
    assert ds.sha256 == hashlib.sha256(V1.read_bytes()).hexdigest()


def test_reads_v2_with_unanswerable_questions():
    ds = read_squad(V2)
    assert ds.version == "2.0"
    impossible = [ex for ex in ds.examples if ex.is_impossible]
    assert [ex.qid for ex in impossible] == ["v2-d3", "v2-d4", "v2-e3", "v2-e4", "v2-c2"]
    assert all(ex.answers == () for ex in impossible)
    assert ds.examples[6].plausible_answers == (("Tomas Fell", 123),)
    assert ds.gold_answers()["v2-d3"] == []


def test_version_is_detected_from_is_impossible_without_version_field(tmp_path):
    obj = v2_obj()
    del obj["version"]
    assert read_squad(write(tmp_path, obj)).version == "2.0"


def test_v2_file_read_as_v1_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"is SQuAD v2\.0 .*--version 2\.0"):
        read_squad(V2, "1.1")


def test_wrong_answer_start_names_the_question(tmp_path):
    obj = v1_obj()
    qa(obj, "v1-a2")["answers"][0]["answer_start"] += 1
    with pytest.raises(UserError) as err:
        read_squad(write(tmp_path, obj))
    message = str(err.value)
    assert "question 'v1-a2'" in message
    assert "'1642' is not at answer_start" in message
    assert "\n" not in message


def test_second_dev_answer_is_checked_too(tmp_path):
    obj = v1_obj()
    qa(obj, "v1-b3")["answers"][1]["answer_start"] = 0
    with pytest.raises(UserError, match=r"question 'v1-b3'.*answers\[1\] '312' is not at"):
        read_squad(write(tmp_path, obj))


def test_malformed_json_reports_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"version": "1.1",\n "data": [\n  {"title": "x" "paragraphs": []}\n ]\n}\n')
    with pytest.raises(UserError) as err:
        read_squad(path)
    # Line 3 is `  {"title": "x" "paragraphs": []}`; the missing comma is before column 17.
    assert f"{path}: not valid JSON at line 3, column 17" in str(err.value)


@pytest.mark.parametrize("context", ["", "   \n "])
def test_empty_context_names_the_question(tmp_path, context):
    obj = v1_obj()
    obj["data"][0]["paragraphs"][1]["context"] = context
    with pytest.raises(UserError, match=r"question 'v1-b1' .*the context is empty"):
        read_squad(write(tmp_path, obj))


def test_impossible_question_with_answers_is_refused(tmp_path):
    obj = v2_obj()
    record = qa(obj, "v2-e1")
    record["is_impossible"] = True
    with pytest.raises(UserError, match=r"question 'v2-e1'.*is_impossible is true but"):
        read_squad(write(tmp_path, obj))


def test_answerable_question_without_answers(tmp_path):
    obj = v2_obj()
    qa(obj, "v2-d1")["answers"] = []
    with pytest.raises(UserError, match=r"question 'v2-d1'.*no answers.*is_impossible"):
        read_squad(write(tmp_path, obj))
    # Prediction-only files may leave answers out.
    ds = read_squad(write(tmp_path, obj), require_answers=False)
    assert ds.examples[0].answers == ()


def test_duplicate_question_id(tmp_path):
    obj = v1_obj()
    qa(obj, "v1-a2")["id"] = "v1-a1"
    with pytest.raises(UserError, match=r"question 'v1-a1'.*used twice"):
        read_squad(write(tmp_path, obj))


def test_empty_question_text(tmp_path):
    obj = v1_obj()
    qa(obj, "v1-c3")["question"] = "  "
    with pytest.raises(UserError, match=r"question 'v1-c3'.*question text is empty"):
        read_squad(write(tmp_path, obj))


def test_bad_structure_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="not a SQuAD file"):
        read_squad(write(tmp_path, [1, 2]))
    obj = copy.deepcopy(v1_obj())
    obj["data"][1]["paragraphs"] = {}
    with pytest.raises(UserError, match=r"data\[1\]: expected an object with a 'paragraphs'"):
        read_squad(write(tmp_path, obj))
    with pytest.raises(UserError, match="SQuAD file not found"):
        read_squad(tmp_path / "nope.json")

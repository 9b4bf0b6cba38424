"""The GLUE reader: each task's official TSV layout, read from hand-written files (ours) in
tests/fixtures/glue/<Folder>/, with its label set, regression flag, splits and metric names."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from nvlm.errors import UserError
from nvlm.tasks.classify.glue import GLUE_TASKS, glue_task, read_glue

GLUE = Path(__file__).parent / "fixtures" / "glue"


def _names(dataset):
    return [dataset.label_set.names[i] for i in dataset.labels]


def test_cola_has_no_header_and_keeps_quotes_inside_a_sentence():
    train = read_glue("cola", GLUE, "train")
    assert train.texts == [
        "The kettle whistled on the stove.",
        "Whistled kettle the stove on the.",
        'She said "hello" and left.',
    ]
    assert train.pairs is None
    assert _names(train) == ["1", "0", "1"]
    assert train.label_set.names == ("0", "1")
    assert GLUE_TASKS["cola"].metrics == ("mcc",)


def test_sst2_reads_sentence_and_label_by_header_and_keeps_a_leading_quote():
    train = read_glue("sst2", GLUE / "SST-2", "train")
    assert train.texts[2] == '"brilliant" , says nobody '
    assert list(train.labels) == [1, 0, 0]
    assert GLUE_TASKS["sst2"].metrics == ("accuracy",)


def test_mrpc_pairs_come_from_the_two_string_columns_and_quality_is_the_label():
    dev = read_glue("mrpc", GLUE, "dev")
    assert dev.texts == ["Prices rose by two percent.", "The team won."]
    assert dev.pairs == ["Prices went up 2 percent.", "The shop closed early."]
    assert _names(dev) == ["1", "0"]
    assert GLUE_TASKS["mrpc"].metrics == ("accuracy", "f1")


def test_stsb_is_regression_on_the_last_column():
    train = read_glue("stsb", GLUE, "train")
    assert train.regression and train.label_set is None and train.labels is None
    np.testing.assert_array_equal(train.targets, np.array([4.25, 0.0], dtype=np.float32))
    assert train.pairs == ["A dog is running along the sand.", "A child paints a fence."]
    assert GLUE_TASKS["stsb"].metrics == ("pearson", "spearman")


def test_qqp_reads_question_pairs_and_is_duplicate():
    train = read_glue("qqp", GLUE, "train")
    assert train.texts[0] == "How do I boil an egg?"
    assert train.pairs[1] == "How tall is a giraffe?"
    assert _names(train) == ["1", "0"]
    assert GLUE_TASKS["qqp"].metrics == ("accuracy", "f1")


def test_mnli_labels_in_reference_order_and_both_dev_sets():
    task = GLUE_TASKS["mnli"]
    assert task.labels == ("contradiction", "entailment", "neutral")
    train = read_glue("mnli", GLUE, "train")
    assert list(train.labels) == [1, 0, 2]
    assert train.texts[0] == "The lamp is on." and train.pairs[0] == "The room has light."
    # dev files have 16 columns (label1..label5, gold_label): read by name, gold_label wins.
    matched = read_glue("mnli", GLUE, "dev_matched")
    assert _names(matched) == ["entailment"]
    assert read_glue("mnli", GLUE, "dev").texts == matched.texts  # dev = matched
    mismatched = read_glue("mnli", GLUE, "dev_mismatched")
    assert _names(mismatched) == ["contradiction", "neutral"]
    assert mismatched.path.endswith("MNLI/dev_mismatched.tsv")


def test_qnli_pairs_question_with_sentence():
    train = read_glue("qnli", GLUE, "train")
    assert train.texts[0] == "What colour is the door?"
    assert train.label_set.names == ("entailment", "not_entailment")
    assert list(train.labels) == [0, 1]


def test_rte_reads_sentence1_sentence2_label():
    train = read_glue("rte", GLUE, "train")
    assert train.pairs == ["Anna lives in Lisbon.", "The museum opens every day."]
    assert _names(train) == ["entailment", "not_entailment"]


def test_wnli_labels_are_zero_and_one():
    train = read_glue("wnli", GLUE, "train")
    assert train.label_set.names == ("0", "1")
    assert list(train.labels) == [1, 0]
    assert read_glue("wnli", GLUE, "dev").pairs == ["Zoe had helped."]


def test_every_task_reads_its_train_and_dev_and_names_its_metrics():
    assert set(GLUE_TASKS) == {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}
    for name, task in GLUE_TASKS.items():
        assert task.metrics
        for split in task.splits:
            assert len(read_glue(name, GLUE, split)) > 0


def test_a_tsv_file_can_be_given_directly():
    dev = read_glue("rte", GLUE / "RTE" / "dev.tsv", "dev")
    assert dev.texts == ["Tom sold his car."]


def test_unknown_task_and_split_are_one_line():
    with pytest.raises(UserError) as exc:
        glue_task("sts")
    assert str(exc.value) == (
        "unknown GLUE task 'sts' (use one of cola|sst2|mrpc|stsb|qqp|mnli|qnli|rte|wnli)"
    )
    with pytest.raises(UserError) as exc:
        read_glue("sst2", GLUE, "dev_matched")
    assert str(exc.value) == "GLUE sst2 has no split 'dev_matched' (use one of train, dev)"


def test_missing_files_name_where_they_were_looked_for(tmp_path):
    with pytest.raises(UserError) as exc:
        read_glue("cola", tmp_path, "train")
    assert str(exc.value) == (
        f"GLUE cola train: no train.tsv in {tmp_path} or {tmp_path}/CoLA "
        f"(see `nvlm data download glue --task cola --out {tmp_path}`)"
    )


def test_a_label_outside_the_task_set_names_file_and_line(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("index\tsentence1\tsentence2\tlabel\n0\tA b.\tC d.\tneutral\n")
    with pytest.raises(UserError) as exc:
        read_glue("rte", path, "dev")
    assert str(exc.value) == (
        f"{path} line 2: the label 'neutral' is not in the label set of GLUE rte "
        "(entailment, not_entailment)"
    )


def test_a_row_with_a_tab_too_many_is_refused_with_its_line(tmp_path):
    folder = tmp_path / "SST-2"
    shutil.copytree(GLUE / "SST-2", folder)
    with open(folder / "train.tsv", "a") as handle:
        handle.write("a film\twith a tab\t1\n")
    with pytest.raises(UserError) as exc:
        read_glue("sst2", tmp_path, "train")
    assert str(exc.value) == (
        f"{folder / 'train.tsv'} line 5: 3 columns where GLUE sst2 has 2 "
        "(is it the SST-2 file of the official GLUE download?)"
    )


def test_a_file_of_another_task_is_named_by_its_header(tmp_path):
    with pytest.raises(UserError) as exc:
        read_glue("qnli", GLUE / "RTE" / "train.tsv", "train")
    assert str(exc.value) == (
        f"{GLUE / 'RTE' / 'train.tsv'}: the header lacks 'question', 'sentence' "
        "(it has index, sentence1, sentence2, label) "
        "(is it the QNLI file of the official GLUE download?)"
    )


def test_an_stsb_score_that_is_not_a_number_is_refused(tmp_path):
    path = tmp_path / "train.tsv"
    lines = (GLUE / "STS-B" / "train.tsv").read_text().splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\thigh"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as exc:
        read_glue("stsb", path, "train")
    assert str(exc.value) == f"{path} line 3: the regression target 'high' is not a finite number"

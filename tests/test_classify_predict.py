"""`nvlm predict --task classify` (issue 17): the label and the probabilities of a text or of a
text pair, a regression model's score, JSONL pipelines with error objects; the classification
SavedModel (`nvlm convert --to savedmodel --task classify`) and the Hugging Face export of a
classify run (`nvlm convert --to hf`). The runs are made from the committed Hugging Face
classification fixtures with `nvlm convert SRC RUN --to nvlm`; the reference figures are Hugging
Face's own logits (tests/fixtures/classify_tiny_expected.npz, made by make_classify_fixtures.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import error_line, invoke, json_of, ok

from nvlm import registry
from nvlm.errors import UserError
from nvlm.tasks.classify.prediction import Classifier, label_names, result_lines, softmax
from nvlm.tasks.prediction import PredictRequest

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = np.load(FIXTURES / "classify_tiny_expected.npz")
BATCH = {k: EXPECTED[k] for k in ("input_ids", "input_mask", "segment_ids")}
SOURCES = {  # run name -> (model, Hugging Face fixture, its logits in EXPECTED)
    "bert": ("bert", "bert_tiny_classify_hf", "bert_logits"),
    "electra": ("electra", "electra_tiny_classify_hf", "electra_logits"),
    "regression": ("bert", "bert_tiny_regression_hf", "regression_logits"),
}
LABELS = {"bert": ("negative", "neutral", "positive"), "electra": ("different", "paraphrase")}
# Texts of the fixtures' vocab (lowercase letters and a few words; ours).
TEXT, PAIR = "the cat sat on a mat", "a dog ran"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("classify-runs")
    for name, (_, src, _) in SOURCES.items():
        ok(invoke("convert", FIXTURES / src, root / name, "--to", "nvlm"))
    return {name: root / name for name in SOURCES}


@pytest.fixture(scope="module")
def classifiers(runs) -> dict[str, Classifier]:
    return {
        name: Classifier(registry.get(SOURCES[name][0]), str(run)) for name, run in runs.items()
    }


def predict(run: Path, *args):
    return invoke("predict", "--init", run, "--task", "classify", *args)


# -- the library: Hugging Face's figures, the run's label names -------------------------------------
@pytest.mark.parametrize("name", ["bert", "electra"])
def test_probabilities_are_hugging_faces_softmax_and_labels_are_the_runs(classifiers, name):
    classifier = classifiers[name]
    assert classifier.labels == LABELS[name] and not classifier.regression
    results = classifier.results(classifier.logits(BATCH))
    expected = softmax(EXPECTED[SOURCES[name][2]])
    for result, probs in zip(results, expected, strict=True):
        assert list(result["probabilities"]) == list(LABELS[name])
        np.testing.assert_allclose(list(result["probabilities"].values()), probs, atol=1e-4)
        assert result["label"] == LABELS[name][int(np.argmax(probs))]


def test_a_regression_model_gives_hugging_faces_score(classifiers):
    results = classifiers["regression"].results(classifiers["regression"].logits(BATCH))
    assert [set(r) for r in results] == [{"score"}] * 3
    np.testing.assert_allclose(
        [r["score"] for r in results], EXPECTED["regression_logits"][:, 0], atol=1e-5
    )


def test_a_hugging_face_directory_predicts_as_the_run_converted_from_it(classifiers):
    direct = Classifier(registry.get("bert"), str(FIXTURES / "bert_tiny_classify_hf"))
    assert direct.labels == LABELS["bert"]
    np.testing.assert_allclose(
        direct.logits(BATCH), classifiers["bert"].logits(BATCH), atol=1e-6, rtol=0
    )


def test_unnamed_labels_are_label_i_and_regression_has_none():
    class Model:
        def __init__(self, num_labels, labels=()):
            self.num_labels, self.labels = num_labels, labels

    assert label_names(Model(3)) == ("LABEL_0", "LABEL_1", "LABEL_2")
    assert label_names(Model(2, ("no", "yes"))) == ("no", "yes")
    assert label_names(Model(1)) == ()


def test_result_lines_put_the_label_first_and_the_probabilities_most_probable_first():
    result = {"label": "b", "probabilities": {"a": 0.25, "b": 0.7, "c": 0.05}}
    assert result_lines(result) == ("b", ["b\t0.7000", "a\t0.2500", "c\t0.0500"])
    assert result_lines({"score": 0.123456789}) == ("0.123457", [])


# -- nvlm predict --task classify --text [--pair] ----------------------------------------------------
def test_text_prints_the_label_on_stdout_and_the_probabilities_on_stderr(runs, classifiers):
    [expected] = classifiers["bert"].classify([TEXT])
    result = ok(predict(runs["bert"], "--text", TEXT))
    assert result.stdout == expected["label"] + "\n"
    ranked = sorted(expected["probabilities"].items(), key=lambda kv: -kv[1])
    assert result.stderr.splitlines() == [f"{n}\t{p:.4f}" for n, p in ranked]


def test_json_prints_the_label_and_every_probability(runs, classifiers):
    out = json_of(predict(runs["electra"], "--text", TEXT, "--json"))
    [expected] = classifiers["electra"].classify([TEXT])
    assert list(out) == ["label", "probabilities"] and out["label"] == expected["label"]
    assert list(out["probabilities"]) == list(LABELS["electra"])
    np.testing.assert_allclose(
        list(out["probabilities"].values()), list(expected["probabilities"].values()), atol=1e-6
    )
    assert abs(sum(out["probabilities"].values()) - 1) < 1e-9


def test_a_pair_is_classified_as_one_input_with_two_segments(runs, classifiers):
    out = json_of(predict(runs["electra"], "--text", TEXT, "--pair", PAIR, "--json"))
    classifier = classifiers["electra"]
    batch, truncated = classifier.encode([TEXT], [PAIR])
    assert truncated == 0 and batch["segment_ids"][0].max() == 1  # [CLS] a [SEP] b [SEP]
    [expected] = classifier.results(classifier.logits(batch))
    np.testing.assert_allclose(
        list(out["probabilities"].values()), list(expected["probabilities"].values()), atol=1e-6
    )
    alone = json_of(predict(runs["electra"], "--text", TEXT, "--json"))
    assert out["probabilities"] != alone["probabilities"]  # the pair was read


def test_a_regression_run_prints_its_score(runs, classifiers):
    [expected] = classifiers["regression"].classify([TEXT])
    out = json_of(predict(runs["regression"], "--text", TEXT, "--json"))
    assert list(out) == ["score"] and out["score"] == pytest.approx(expected["score"], abs=1e-6)
    shown = ok(predict(runs["regression"], "--text", TEXT)).stdout
    assert shown.endswith("\n") and float(shown) == pytest.approx(expected["score"], abs=1e-5)


# -- nvlm predict --task classify --input ----------------------------------------------------------
def test_jsonl_lines_get_their_result_or_an_error_object_and_exit_1(runs, classifiers, tmp_path):
    lines = tmp_path / "in.jsonl"
    lines.write_text(
        json.dumps({"id": "a", "text": TEXT}) + "\n"
        + json.dumps({"text": TEXT, "text_pair": PAIR}) + "\n"
        + json.dumps({"text": 5}) + "\n"
        + "{not json\n"
        + TEXT + "\n"
    )  # fmt: skip
    result = predict(runs["electra"], "--input", lines, "--batch-size", 2)
    assert result.exit_code == 1, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    single, paired = (
        classifiers["electra"].classify([TEXT]),
        classifiers["electra"].classify([TEXT], [PAIR]),
    )
    assert [o.get("id") for o in out] == ["a", 2, None, None, 5]
    assert out[2] == {"line": 3, "error": "line 3: 'text' must be a string, not a number (5)"}
    assert out[3]["line"] == 4 and out[3]["error"].startswith("line 4: ")
    for got, expected in ((out[0], single[0]), (out[1], paired[0]), (out[4], single[0])):
        assert set(got) == {"id", "label", "probabilities"}
        assert got["label"] == expected["label"]
        np.testing.assert_allclose(
            list(got["probabilities"].values()),
            list(expected["probabilities"].values()),
            atol=1e-6,
        )


def test_a_clean_stream_exits_0_with_one_line_per_input_line(runs, tmp_path):
    lines = tmp_path / "in.jsonl"
    lines.write_text("".join(json.dumps({"id": i, "text": TEXT}) + "\n" for i in range(3)))
    result = ok(predict(runs["regression"], "--input", lines))
    assert [set(json.loads(x)) for x in result.stdout.splitlines()] == [{"id", "score"}] * 3


# -- refusals: one line, exit 2 --------------------------------------------------------------------
def test_a_source_without_a_classification_head_is_refused(tmp_path):
    for src, title in (
        ("bert_tiny_hf", "classification head (classifier, output_weights)"),
        ("electra_tiny_hf", "classification head (classifier)"),
    ):
        line = error_line(predict(FIXTURES / src, "--text", TEXT))
        assert line == (
            f"nvlm: error: --init {FIXTURES / src} has no {title}: classify needs a fine-tuned "
            "classifier (nvlm finetune --task classify, or a Hugging Face "
            "*ForSequenceClassification directory)"
        )


@pytest.mark.parametrize(
    ("model", "args", "message"),
    [
        ("bert", ["--task", "classify", "--pair", PAIR],
         '--pair needs --text (the first text of the pair; with --input, give "text_pair" on '
         "each line)"),
        ("bert", ["--task", "classify", "--input", "-", "--pair", PAIR],
         '--pair needs --text (the first text of the pair; with --input, give "text_pair" on '
         "each line)"),
        ("bert", ["--text", TEXT, "--pair", PAIR],
         "--pair does not apply to --model bert --task features (the default with --text): it "
         "is for --task classify (the second text of a pair, with --text)"),
        ("electra", ["--task", "fill-mask", "--text", "a [MASK]", "--pair", PAIR],
         "--pair does not apply to --model electra --task fill-mask: it is for --task classify "
         "(the second text of a pair, with --text)"),
        ("transformer-xl", ["--task", "classify", "--text", TEXT],
         "model transformer-xl cannot predict task 'classify' (tasks: next, generate, score)"),
        ("bert", ["--task", "classify"],
         '--task classify needs exactly one of --text TEXT or --input FILE|- (--text "a fine '
         'film" [--pair "a second text"])'),
        ("bert", ["--task", "classify", "--text", " "], "--text is empty (pass the text to classify)"),
        ("bert", ["--task", "classify", "--text", TEXT, "--batch-size", "4"],
         "--batch-size does not apply to --model bert --task classify with one --text: it is for "
         "--input FILE|- (lines per forward pass)"),
    ],
)  # fmt: skip
def test_bad_classify_options_are_one_line_before_a_model_is_loaded(tmp_path, model, args, message):
    # The --init does not exist: a refusal that came after loading would name it instead.
    result = invoke("predict", "--model", model, "--init", tmp_path / "no-such-run", *args)
    assert error_line(result) == f"nvlm: error: {message}"
    assert result.stdout == ""


def test_the_request_carries_the_pair():
    request = PredictRequest.of_options(
        {"init": "run", "task": "classify", "text": "a", "pair": "b"}, typed=set()
    )
    assert (request.text, request.pair) == ("a", "b")
    with pytest.raises(UserError, match=r"^--pair needs --text"):
        from nvlm.tasks.classify.prediction import classify_input

        classify_input(PredictRequest("run", task="classify", pair="b"))


# -- exports ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bert", "regression"])
def test_savedmodel_export_serves_nvlms_logits_and_probabilities(runs, classifiers, name, tmp_path):
    import tensorflow as tf

    summary = json_of(invoke("convert", runs[name], tmp_path / "sm", "--to", "savedmodel",
                             "--seq-len", 12, "--json"))  # fmt: skip
    assert summary["task"] == "classify"  # the run's task
    fn = tf.saved_model.load(str(tmp_path / "sm" / "1")).signatures["serving_default"]
    served = fn(**{k: tf.constant(v) for k, v in BATCH.items()})
    ours = classifiers[name].logits(BATCH)
    np.testing.assert_allclose(served["logits"].numpy(), ours, atol=1e-5, rtol=0)
    if name == "regression":
        assert set(served) == {"logits"} and not (tmp_path / "sm" / "labels.json").exists()
        return
    assert set(summary["outputs"]) == {"logits", "probabilities"}
    assert summary["outputs"]["probabilities"] == {"dtype": "float32", "shape": [-1, 3]}
    np.testing.assert_allclose(served["probabilities"].numpy(), softmax(ours), atol=1e-5)
    labels = json.loads((tmp_path / "sm" / "labels.json").read_text())
    assert labels == {"labels": list(LABELS["bert"])} and "labels.json" in summary["files"]


@pytest.mark.parametrize("name", ["bert", "electra"])
def test_hf_export_of_a_classify_run_is_the_sequence_classifier_it_came_from(runs, name, tmp_path):
    from safetensors.numpy import load_file

    src = FIXTURES / SOURCES[name][1]
    ok(invoke("convert", runs[name], tmp_path / "hf", "--to", "hf"))
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    original = json.loads((src / "config.json").read_text())
    assert config["architectures"] == original["architectures"]
    assert config["id2label"] == original["id2label"]
    assert config["label2id"] == original["label2id"]
    exported = load_file(tmp_path / "hf" / "model.safetensors")
    weights = load_file(src / "model.safetensors")
    head = sorted(k for k in weights if k.startswith("classifier."))
    assert head and head == sorted(k for k in exported if k.startswith("classifier."))
    for key in head:
        np.testing.assert_allclose(exported[key], weights[key], atol=1e-7, rtol=0, err_msg=key)

"""`nvlm predict --task features` for every encoder (issue 16): ELECTRA's discriminator and
generator as Hugging Face computes them, from HF directories and nvlm runs; sentence
embeddings (`--pooling cls|mean|pooler`, `--normalize`) as sentence-transformers makes them;
the run's precision; one-line refusals of options that do not fit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import error_line, invoke, ok

from nvlm import registry
from nvlm.tasks.features import FeatureExtractor, FeatureOptions

FIXTURES = Path(__file__).parent / "fixtures"
PAIR = FIXTURES / "electra_tiny_hf"
TOL = 1e-4  # absolute, against HF's float32 PyTorch outputs
# Texts of different lengths in one batch: the shorter ones are padded.
TEXTS = ["a b c d e f g", "a", "b c"]


def lines(result) -> list[dict]:
    return [json.loads(x) for x in ok(result).stdout.splitlines()]


def features(init, *args) -> dict:
    [row] = lines(invoke("predict", "--init", init, "--task", "features", *args))
    return row


# --- ELECTRA against Hugging Face ----------------------------------------------------------


@pytest.mark.parametrize(("part", "key"), [(None, "disc"), ("generator", "gen")])
@pytest.mark.parametrize("layer", [None, 0, 1, 2])
def test_electra_features_match_hugging_face(part, key, layer):
    expected = np.load(FIXTURES / "electra_tiny_expected.npz")
    fx = FeatureExtractor(registry.get("electra"), str(PAIR), FeatureOptions(layer, part=part))
    out = fx.encode_ids(expected["input_ids"], expected["input_mask"], expected["segment_ids"])
    hf = expected[f"{key}_hidden_states"]  # [layer, batch, seq, hidden]: embeddings first
    np.testing.assert_allclose(out["sequence"], hf[-1 if layer is None else layer], atol=TOL)


def test_electra_parts_of_a_pair_and_of_its_directories_are_the_same_encoders():
    disc = features(PAIR, "--text", "a b c")
    assert np.shape(disc["features"]) == (5, 32)  # the discriminator is the default
    assert features(PAIR / "discriminator", "--text", "a b c") == disc
    assert features(PAIR, "--text", "a b c", "--part", "discriminator") == disc
    gen = features(PAIR, "--text", "a b c", "--part", "generator")
    assert np.shape(gen["features"]) == (5, 16)  # the generator's own width
    assert gen["tokens"] == disc["tokens"] == ["[CLS]", "a", "b", "c", "[SEP]"]


# --- ELECTRA from an nvlm run --------------------------------------------------------------


@pytest.fixture(scope="module")
def electra_run(electra_shards, tmp_path_factory) -> Path:
    """A tiny ELECTRA pretrained for 2 steps in fp32 (RUN/hf is its exported pair)."""
    run = tmp_path_factory.mktemp("electra-features") / "run"
    ok(invoke("pretrain", "--model", "electra", "--preset", "cpu-fp32", "--data", electra_shards,
              "--out", run, "--steps", 2, "--set", "model.size=tiny", "--set",
              "train.accumulation=1", "--set", "train.batch_size=8", "--set",
              "data.max_predictions=5"))  # fmt: skip
    return run


def run_text(run: Path) -> str:
    """Two words of the run's own vocab (a word-piece line of vocab.txt past the specials)."""
    words = [w for w in (run / "vocab.txt").read_text().split() if w.isalpha()]
    return " ".join(words[:2])


@pytest.mark.parametrize("part", ["discriminator", "generator"])
def test_features_of_an_electra_run_equal_those_of_its_hugging_face_export(electra_run, part):
    text = run_text(electra_run)
    from_run = features(electra_run, "--text", text, "--part", part)
    from_hf = features(electra_run / "hf", "--text", text, "--part", part)
    assert from_run["tokens"] == from_hf["tokens"] and len(from_run["tokens"]) == 4
    np.testing.assert_allclose(from_run["features"], from_hf["features"], atol=1e-5)
    width = json.loads((electra_run / "hf" / part / "config.json").read_text())["hidden_size"]
    assert np.shape(from_run["features"]) == (4, width)


def test_features_run_at_the_runs_precision_unless_told(electra_run):
    text = run_text(electra_run)
    default = np.array(features(electra_run, "--text", text)["features"])
    fp32 = np.array(features(electra_run, "--text", text, "--precision", "fp32")["features"])
    bf16 = np.array(features(electra_run, "--text", text, "--precision", "bf16")["features"])
    np.testing.assert_array_equal(default, fp32)  # the run was trained in fp32
    assert not np.array_equal(bf16, fp32)  # bf16 was honoured...
    np.testing.assert_allclose(bf16, fp32, atol=5e-2)  # ...and is close


# --- sentence embeddings of a MiniLM-shaped BERT -------------------------------------------


@pytest.fixture(scope="module")
def minilm(tmp_path_factory) -> Path:
    """A Hugging Face BERT directory of all-MiniLM-L6-v2's kind, tiny: 2 layers, hidden 32,
    with its pooler (BertModel), and a file of texts of different lengths."""
    root = tmp_path_factory.mktemp("minilm")
    shutil.copytree(FIXTURES / "bert_tiny_hf", root / "model")
    (root / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    return root


def pipeline(minilm: Path, *args) -> list[dict]:
    return lines(invoke("predict", "--init", minilm / "model", "--task", "features", "--input",
                        minilm / "texts.txt", *args))  # fmt: skip


def test_mean_pooled_normalized_embeddings_are_the_mean_of_the_real_tokens(minilm):
    tokens = pipeline(minilm)
    pooled = pipeline(minilm, "--pooling", "mean", "--normalize")
    assert [r["text"] for r in pooled] == TEXTS
    assert [len(r["tokens"]) for r in tokens] == [9, 3, 4]  # padded to 9 in the batch
    for row, seq in zip(pooled, tokens, strict=True):
        mean = np.mean(np.array(seq["features"]), axis=0)  # one row per real token
        np.testing.assert_allclose(row["embedding"], mean / np.linalg.norm(mean), atol=1e-5)
        assert np.linalg.norm(row["embedding"]) == pytest.approx(1.0, abs=1e-5)
        assert "features" not in row and row["tokens"] == seq["tokens"]


def test_cls_pooling_is_the_first_token_and_pooler_is_the_old_pooled(minilm):
    tokens = pipeline(minilm)
    cls = pipeline(minilm, "--pooling", "cls")
    for row, seq in zip(cls, tokens, strict=True):
        assert row["embedding"] == seq["features"][0]
    pooler = pipeline(minilm, "--pooling", "pooler")
    old = pipeline(minilm, "--pooled")  # the old spelling keeps its old key
    assert [r["embedding"] for r in pooler] == [r["features"] for r in old]
    assert not np.allclose(pooler[0]["embedding"], cls[0]["embedding"], atol=1e-3)
    layer0 = pipeline(minilm, "--pooling", "cls", "--layer", "0")  # --layer applies to cls
    assert layer0[0]["embedding"] == pipeline(minilm, "--layer", "0")[0]["features"][0]


# --- one-line refusals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("init", "args", "message"),
    [
        (PAIR, ["--pooling", "pooler"],
         "--pooling pooler: --model electra has no pooler (use --pooling cls|mean)"),
        (FIXTURES / "bert_tiny_hf", ["--normalize"],
         "--normalize needs --pooling cls|mean|pooler (it L2-normalises the pooled vector)"),
        (FIXTURES / "bert_tiny_hf", ["--part", "generator"],
         "--part does not apply to --model bert: it has one encoder (drop --part)"),
        (PAIR / "discriminator", ["--part", "generator"],
         f"--part generator: --init {PAIR / 'discriminator'} holds no ELECTRA generator, only "
         "the discriminator (drop --part, or pass a pretraining run or a discriminator/ + "
         "generator/ pair)"),
        (PAIR, ["--part", "decoder"],
         "--part 'decoder' is not an encoder of --model electra (use --part "
         "discriminator|generator)"),
        (FIXTURES / "bert_tiny_hf", ["--pooling", "max"],
         "--pooling 'max' is not a pooling (use --pooling cls|mean|pooler)"),
        (FIXTURES / "bert_tiny_hf", ["--pooling", "mean", "--pooled"],
         "--pooled is the old spelling of --pooling pooler: give --pooling mean or --pooled, "
         "not both"),
        (FIXTURES / "bert_tiny_hf", ["--task", "squad", "--question", "q?", "--context", "a",
                                     "--pooling", "mean"],
         "--pooling does not apply to --model bert --task squad: it is for --task features "
         "(one vector per text)"),
    ],
)  # fmt: skip
def test_options_that_do_not_fit_are_refused_in_one_line(tmp_path, init, args, message):
    text = [] if "--task" in args else ["--text", "a b"]  # squad takes no --text
    result = invoke("predict", "--init", init, *text, *args)
    assert error_line(result) == f"nvlm: error: {message}"
    assert result.stdout == ""

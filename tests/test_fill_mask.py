"""`nvlm predict --task fill-mask`: the tokens of each [MASK] from BERT's pretraining head and
ELECTRA's generator, as Hugging Face's fill-mask pipeline gives them, and every refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import error_line, invoke, ok

from nvlm import registry
from nvlm.tasks.fill_mask import MaskFiller

FIXTURES = Path(__file__).parent / "fixtures"
BERT_HF = FIXTURES / "bert_tiny_hf"
ELECTRA_PAIR = FIXTURES / "electra_tiny_hf"
TEXT = "the [MASK] sat on the mat ."


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def fill(init, text=TEXT, *extra):
    return invoke("predict", "--init", init, "--task", "fill-mask", "--text", text, *extra)


def candidates(init, text=TEXT, *extra):
    return json.loads(ok(fill(init, text, "--json", *extra)).stdout)


# -- parity with Hugging Face -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "init", "fixture", "key"),
    [
        ("bert", BERT_HF, "bert_tiny_expected.npz", "mlm_logits"),
        ("electra", ELECTRA_PAIR, "electra_tiny_expected.npz", "gen_mlm_logits"),
    ],
    ids=["bert-pretraining-head", "electra-generator"],
)
def test_probabilities_are_the_softmax_of_hugging_face_logits(model, init, fixture, key):
    expected = np.load(FIXTURES / fixture)
    filler = MaskFiller(registry.get(model), str(init))
    inputs = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions")
    probs = filler.probabilities({k: expected[k] for k in inputs})
    np.testing.assert_allclose(probs, softmax(expected[key].astype(np.float64)), atol=1e-4)


def test_top_k_candidates_are_the_most_probable_tokens_sorted(tmp_path):
    filler = MaskFiller(registry.get("bert"), str(BERT_HF))
    ids = filler.encode(TEXT)
    position = ids.index(filler.mask)
    batch = {"input_ids": np.array([ids]), "input_mask": np.ones((1, len(ids)), np.int32),
             "segment_ids": np.zeros((1, len(ids)), np.int32),
             "masked_lm_positions": np.array([[position]])}  # fmt: skip
    probs = filler.probabilities(batch)[0, 0]

    got = candidates(BERT_HF, TEXT, "--top-k", 3)
    assert len(got) == 3 and set(got[0]) == {"score", "token", "token_str", "sequence"}
    assert [c["token"] for c in got] == np.argsort(-probs)[:3].tolist()
    scores = [c["score"] for c in got]
    assert scores == sorted(scores, reverse=True) and sum(scores) <= 1.0
    np.testing.assert_allclose(scores, probs[[c["token"] for c in got]], atol=1e-6)
    vocab = (BERT_HF / "vocab.txt").read_text().splitlines()
    for c in got:
        assert c["token_str"] == vocab[c["token"]]
        assert c["sequence"] == f"the {c['token_str']} sat on the mat.".replace(" ##", "")
    assert len(candidates(BERT_HF)) == 5  # Hugging Face's default top-k


def test_several_masks_give_a_list_per_mask_and_a_header_per_mask_for_people():
    got = candidates(BERT_HF, "the [MASK] sat on [MASK] mat", "--top-k", 2)
    assert [len(per_mask) for per_mask in got] == [2, 2]
    assert got[0][0]["sequence"].startswith(f"the {got[0][0]['token_str']} sat on [MASK]")
    assert got[1][0]["sequence"].endswith(f"sat on {got[1][0]['token_str']} mat")

    lines = ok(fill(BERT_HF, "the [MASK] sat on [MASK] mat", "--top-k", 2)).stdout.splitlines()
    assert lines[0] == "[MASK] 1 of 2" and lines[3] == "[MASK] 2 of 2"
    token, probability, sequence = lines[1].split("\t")
    assert (token, sequence) == (got[0][0]["token_str"], got[0][0]["sequence"])
    assert float(probability) == pytest.approx(got[0][0]["score"], abs=1e-4)


def test_one_mask_for_people_is_token_probability_sequence_per_line():
    lines = ok(fill(BERT_HF, TEXT, "--top-k", 3)).stdout.splitlines()
    assert len(lines) == 3 and all(len(line.split("\t")) == 3 for line in lines)


def test_jsonl_input_streams_one_line_out_per_line_in_with_errors_in_place(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": "a", "text": "the [MASK] sat on the mat ."}\n'
        "no mask in this line\n"
        "a dog ran in the [MASK] .\n"
        '{"id": "c", "text": 3}\n'
    )
    result = invoke("predict", "--init", BERT_HF, "--task", "fill-mask", "--input", source,
                    "--top-k", 2)  # fmt: skip
    assert result.exit_code == 1, result.output
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(rows) == 4
    assert rows[0]["id"] == "a" and len(rows[0]["predictions"]) == 2
    assert rows[1] == {"line": 2, "error": "line 2: 'text' has no [MASK]: put [MASK] where a "
                       "token is to be predicted"}  # fmt: skip
    assert rows[2]["line"] == 3 and rows[2]["predictions"][0]["sequence"].startswith("a dog")
    assert rows[3]["line"] == 4 and "'text' must be a string" in rows[3]["error"]


def test_electra_generator_fills_masks_from_a_pair_directory():
    got = candidates(ELECTRA_PAIR, TEXT, "--top-k", 4)
    assert len(got) == 4 and sum(c["score"] for c in got) <= 1.0


# -- refusals (exit 2, one line, before a model is loaded where the options tell) --------------
def test_a_text_without_mask_is_refused():
    line = error_line(fill(BERT_HF, "the cat sat on the mat"))
    assert line == (
        "nvlm: error: --text has no [MASK]: put [MASK] where a token is to be predicted "
        '(--text "the [MASK] sat on the mat")'
    )
    line = error_line(fill(BERT_HF, "the [mask] sat"))
    assert "--text has no [MASK] (spell it in capitals, as the vocab does)" in line


def _hf_without_mlm_head(tmp_path: Path, head: dict | None) -> Path:
    """bert_tiny_hf without its cls.* weights (a BertModel), plus `head` (e.g. qa_outputs)."""
    from safetensors.numpy import load_file, save_file

    out = tmp_path / "hf"
    out.mkdir()
    weights = load_file(BERT_HF / "model.safetensors")
    kept = {k: v for k, v in weights.items() if not k.startswith("cls.")}
    save_file({**kept, **(head or {})}, out / "model.safetensors")
    for name in ("config.json", "vocab.txt"):
        (out / name).write_bytes((BERT_HF / name).read_bytes())
    return out


def test_a_hugging_face_bert_model_without_mlm_head_is_refused(tmp_path):
    line = error_line(fill(_hf_without_mlm_head(tmp_path, None)))
    assert "has no masked-LM head (cls/predictions): fill-mask would rank tokens with randomly " \
        "initialised weights (pass a pretraining run" in line  # fmt: skip


def test_a_squad_fine_tuned_run_is_refused(tmp_path):
    qa = {"qa_outputs.weight": np.zeros((2, 32), np.float32),
          "qa_outputs.bias": np.zeros((2,), np.float32)}  # fmt: skip
    run = tmp_path / "squad-run"
    ok(invoke("convert", _hf_without_mlm_head(tmp_path, qa), run, "--to", "nvlm"))
    assert "stage: squad" in (run / "config.yaml").read_text()
    line = error_line(fill(run))
    assert f"--init {run} has no masked-LM head (cls/predictions)" in line
    assert "fill-mask would rank tokens with randomly initialised weights" in line


def test_an_electra_discriminator_alone_is_refused_naming_the_pair():
    line = error_line(fill(ELECTRA_PAIR / "discriminator"))
    assert "needs the generator" in line and "discriminator/ and generator/ (RUN/hf)" in line


def test_fill_mask_on_transformer_xl_is_refused():
    line = error_line(invoke("predict", "--model", "transformer-xl", "--init", "nowhere",
                             "--task", "fill-mask", "--text", TEXT))  # fmt: skip
    assert "cannot predict task 'fill-mask' (tasks: next, generate, score)" in line


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--next", "3"], "--next does not apply to --model bert --task fill-mask"),
        (
            ["--batch-size", "4"],
            "--batch-size does not apply to --model bert --task fill-mask with one --text",
        ),  # fmt: skip
        (["--input", "-"], "--task fill-mask needs exactly one of --text TEXT or --input FILE|-"),
    ],
    ids=["next", "batch-size-with-text", "text-and-input"],
)
def test_options_that_do_not_apply_to_fill_mask_are_refused(extra, expected):
    assert expected in error_line(fill(BERT_HF, TEXT, *extra))


def test_fill_mask_is_listed_among_the_predict_tasks_of_masked_lm_models():
    from nvlm.tasks.prediction import predict_tasks

    assert "fill-mask" in predict_tasks(registry.get("bert"))
    assert "fill-mask" in predict_tasks(registry.get("electra"))
    assert "fill-mask" not in predict_tasks(registry.get("transformer-xl"))


# -- a tiny model that learnt a repetitive corpus predicts its held-out words -------------------
@pytest.mark.slow
def test_tiny_bert_trained_on_a_repetitive_corpus_predicts_the_held_out_word(bert_shards, tmp_path):
    run = tmp_path / "run"
    ok(invoke("pretrain", "--model", "bert", "--preset", "cpu-fp32", "--data", bert_shards,
              "--out", run, "--steps", 400, "--set", "model.size=tiny", "--set",
              "model.dropout=0", "--set", "train.lr_per_gpu=false", "--set",
              "train.accumulation=1", "--set", "train.warmup_steps=10", "--set", "train.lr=2e-2",
              "--set", "train.batch_size=32", "--set", "train.log_every=1000", "--set",
              "train.checkpoint_every=400"))  # fmt: skip
    for text, word in [("she likes green [MASK] .", "apples"), ("we bake [MASK] on sunday .",
                                                                 "bread")]:  # fmt: skip
        [best, *_] = candidates(run, text)
        assert (best["token_str"], best["sequence"]) == (word, text.replace("[MASK]", word)
                                                         .replace(" .", "."))  # fmt: skip
        assert best["score"] > 0.3


def test_a_lone_electra_generator_directory_is_refused_pointing_to_its_pair():
    # nvlm reads a generator with the discriminator it was trained with (their pair).
    for task in (["--task", "fill-mask", "--text", "the [MASK] sat"],
                 ["--task", "features", "--text", "the cat", "--part", "generator"]):  # fmt: skip
        result = invoke("predict", "--init", FIXTURES / "electra_tiny_hf" / "generator", *task)
        assert result.exit_code == 2
        line = error_line(result)
        assert "is an ELECTRA generator (ElectraForMaskedLM)" in line
        assert line.endswith(
            "(discriminator/ + generator/, as RUN/hf): predict --task fill-mask, or --task "
            "features --part generator)"
        )

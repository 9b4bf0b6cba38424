"""`nvlm predict --task fill-mask`: the most probable tokens for each [MASK] of a text, from a
model's masked-LM head (BERT's pretraining head, ELECTRA's generator), in the shape of Hugging
Face's fill-mask pipeline: per mask, the top-k `{"score", "token", "token_str", "sequence"}`
sorted by probability (a softmax over the whole vocabulary), one list for one mask, a list of
lists for several.

    filler = load_filler(registry.get("bert"), PredictRequest("runs/p1", task="fill-mask"))
    fill_one(filler, "the [MASK] sat on the mat")
    # [{"score": 0.91, "token": 17, "token_str": "cat", "sequence": "the cat sat on the mat"}, ...]

The model is loaded through `load_model_and_absent(plugin, init, "mlm")`, so the run's (or
--preset's) precision and XLA and any --set apply, and a source without the masked-LM head
(a SQuAD fine-tuned run, an encoder-only or discriminator-only Hugging Face directory) is
refused: ranking tokens with a randomly initialised head would print confident nonsense.
"""

from __future__ import annotations

import json
from typing import BinaryIO

import numpy as np

from nvlm.data.special_tokens import CLS, CONTINUATION_PREFIX, MASK, SEP
from nvlm.errors import UserError
from nvlm.tasks.pipeline import json_type, open_input, run_pipeline, string_field

DEFAULT_TOP_K = 5  # Hugging Face's fill-mask default
EXAMPLE = '--text "the [MASK] sat on the mat"'
NO_HEAD = (
    "fill-mask would rank tokens with randomly initialised weights (pass a pretraining run, a "
    "Hugging Face BertForPreTraining/BertForMaskedLM directory or a Google checkpoint for BERT; "
    "an nvlm ELECTRA pretraining run or its RUN/hf pair directory for ELECTRA's generator)"
)


def check_text(where: str, text: str) -> None:
    """`text` must hold the mask token, spelt as the vocab spells it ([MASK], capitals)."""
    if MASK in text:
        return
    spelt = " (spell it in capitals, as the vocab does)" if MASK.lower() in text.lower() else ""
    raise ValueError(f"{where} has no {MASK}{spelt}: put {MASK} where a token is to be predicted")


def fill_mask_input(request) -> BinaryIO | None:
    """The --input stream, or None for one --text (checked here, before a model is loaded)."""
    from nvlm.tasks.prediction import check_text as check_utf8

    if (request.text is None) == (request.input is None):
        raise UserError(f"--task fill-mask needs exactly one of --text TEXT or --input FILE|- ({EXAMPLE})")  # fmt: skip
    if request.input is not None:
        return open_input(request.input)
    check_utf8("--text", request.text)
    try:
        check_text("--text", request.text)
    except ValueError as exc:
        raise UserError(f"{exc} ({EXAMPLE})") from None
    return None


class MaskFiller:
    """A masked-LM head loaded once, filling the masks of batches of texts.

    Args:
        plugin: the model's `ModelPlugin` (it provides `masked_lm_logits`).
        init: the `--init` source.
        top_k: candidates per mask.
        load_options: `PredictRequest.load_options()` (precision, XLA, preset, --set).
    """

    def __init__(self, plugin, init: str, *, top_k: int = DEFAULT_TOP_K, load_options=None):
        import tensorflow as tf

        from nvlm.data.vocab import Vocab
        from nvlm.tasks.inference import load_model_and_absent

        if not plugin.provides("masked_lm_logits"):
            raise UserError(f"{plugin.label} has no masked-LM head to fill in masked tokens with")
        cfg, model, _ = load_model_and_absent(
            plugin, init, "mlm", mlm_refusal=NO_HEAD, **(load_options or {})
        )
        vocab_path, lowercase = plugin.text_settings(init)
        if vocab_path is None:
            raise UserError(f"--init {init} has no vocab.txt next to it (copy the vocab there)")
        self.vocab = Vocab.load(vocab_path)
        self.tokenizer = self.vocab.tokenizer(lowercase)
        self.mask, self.cls, self.sep = (self.vocab.id(t) for t in (MASK, CLS, SEP))
        self.max_len = int(getattr(cfg.model, "max_position", 512))
        self.top_k = top_k
        self._forward = tf.function(
            lambda batch: tf.cast(plugin.masked_lm_logits(model, batch), tf.float32),
            reduce_retracing=True,
            jit_compile=bool(cfg.train.xla),
        )

    # -- text -> ids -> probabilities ---------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """[CLS] pieces [SEP], each [MASK] of `text` one token; ValueError when too long."""
        pieces = text.split(MASK)
        encoded = self.tokenizer.encode_batch(pieces, add_special_tokens=False)
        ids = [self.cls]
        for i, enc in enumerate(encoded):
            ids += ([self.mask] if i else []) + enc.ids
        ids.append(self.sep)
        if len(ids) > self.max_len:
            raise ValueError(
                f"the text has {len(ids)} tokens with [CLS] and [SEP], over the model's "
                f"{self.max_len} positions (shorten it around the {MASK})"
            )
        return ids

    def probabilities(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Softmax over the vocabulary of the logits at `masked_lm_positions` `[batch, P]`."""
        import tensorflow as tf

        logits = self._forward({k: tf.constant(v, tf.int32) for k, v in batch.items()})
        logits = np.asarray(logits, np.float64)
        logits -= logits.max(axis=-1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=-1, keepdims=True)

    def fill(self, texts: list[str]) -> list[list[list[dict]]]:
        """Per text, per [MASK] in order: its top-k candidates, most probable first."""
        rows = [self.encode(t) for t in texts]
        where = [[i for i, t in enumerate(r) if t == self.mask] for r in rows]
        length, slots = max(map(len, rows)), max(map(len, where))
        batch = {k: np.zeros((len(rows), length), np.int32) for k in ("input_ids", "input_mask")}
        batch["segment_ids"] = np.zeros_like(batch["input_ids"])
        batch["masked_lm_positions"] = np.zeros((len(rows), slots), np.int32)  # unused slots: 0
        for i, (r, w) in enumerate(zip(rows, where, strict=True)):
            batch["input_ids"][i, : len(r)] = r
            batch["input_mask"][i, : len(r)] = 1
            batch["masked_lm_positions"][i, : len(w)] = w
        probs = self.probabilities(batch)[..., : len(self.vocab.tokens)]  # padded rows: no token
        k = min(self.top_k, probs.shape[-1])
        return [
            [self._candidates(r, pos, probs[i, j], k) for j, pos in enumerate(w)]
            for i, (r, w) in enumerate(zip(rows, where, strict=True))
        ]

    def _candidates(self, ids: list[int], position: int, probs: np.ndarray, k: int) -> list:
        best = np.argsort(-probs, kind="stable")[:k]
        out = []
        for token in best.tolist():
            filled = ids[1:-1]
            filled[position - 1] = token
            out.append(
                {
                    "score": float(probs[token]),
                    "token": int(token),
                    "token_str": self.vocab.tokens[token],
                    "sequence": detokenize([self.vocab.tokens[t] for t in filled]),
                }
            )
        return out

    # -- JSONL (`run_pipeline`) ---------------------------------------------------------------
    def parse(self, number: int, line: str) -> dict:
        """A text per line, or a JSON object {"id"?, "text"}; ValueError: that line's error."""
        item = {"line": number}
        if line.lstrip().startswith("{"):
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError('expected a JSON object {"id"?, "text"}')
            if "id" in obj:
                if isinstance(obj["id"], bool) or not isinstance(obj["id"], (str, int)):
                    raise ValueError(f"'id' must be a string or an integer, not {json_type(obj['id'])}")  # fmt: skip
                item["id"] = obj["id"]
            item["text"] = string_field(obj, "text")
        else:
            item["text"] = line
        check_text("'text'", item["text"])
        self.encode(item["text"])  # too long: this line's error, not the batch's
        return item

    def __call__(self, items: list[dict]) -> list[dict]:
        filled = self.fill([item["text"] for item in items])
        return [{**item, "predictions": hf_shape(f)} for item, f in zip(items, filled, strict=True)]


def detokenize(tokens: list[str]) -> str:
    """WordPiece tokens -> text as a BERT tokenizer decodes them: pieces joined by spaces,
    continuations glued, no space before . , ! ? and English contractions."""
    text = " ".join(tokens).replace(f" {CONTINUATION_PREFIX}", "")
    for before, after in ((" .", "."), (" ,", ","), (" !", "!"), (" ?", "?"), (" ' ", "'"),
                          (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"),
                          (" 're", "'re")):  # fmt: skip
        text = text.replace(before, after)
    return text.strip()


def hf_shape(per_mask: list[list[dict]]) -> list:
    """Hugging Face's layout: the candidates of the one mask, or a list per mask."""
    return per_mask[0] if len(per_mask) == 1 else per_mask


# -- what `nvlm predict --task fill-mask` calls -----------------------------------------------------
def load_filler(plugin, request) -> MaskFiller:
    """The masked-LM model of `request.init`, with --top-k and how the run computes."""
    return MaskFiller(
        plugin,
        request.init,
        top_k=request.top_k or DEFAULT_TOP_K,
        load_options=request.load_options(),
    )


def fill_one(filler: MaskFiller, text: str) -> list:
    """The candidates of --text in Hugging Face's layout (what --json prints)."""
    try:
        [per_mask] = filler.fill([text])
    except ValueError as exc:  # too long for the model
        raise UserError(f"--text: {exc}") from None
    return hf_shape(per_mask)


def fill_stream(filler: MaskFiller, stream: BinaryIO, batch_size: int) -> int:
    """One JSON line per input line: {"line", "id"?, "text", "predictions"} or an error object;
    returns the number of lines that failed."""
    return run_pipeline(stream, batch_size, filler.parse, filler)


def fill_lines(result: list) -> list[str]:
    """For people: "token<TAB>probability<TAB>sequence" per candidate; with several masks, a
    header "[MASK] i of n" before each mask's candidates."""
    per_mask = result if result and isinstance(result[0], list) else [result]
    lines = []
    for i, candidates in enumerate(per_mask, 1):
        if len(per_mask) > 1:
            lines.append(f"{MASK} {i} of {len(per_mask)}")
        lines += [f"{c['token_str']}\t{c['score']:.4f}\t{c['sequence']}" for c in candidates]
    return lines


def run(plugin, request, *, verbose: bool = False, json_out: bool = False) -> int:
    """`nvlm predict --task fill-mask`, printed on stdout: the candidates of --text for people
    (`fill_lines`) or with `json_out` as Hugging Face's list; with --input one JSON line per
    input line. Returns the number of input lines that failed."""
    import sys
    import time

    from nvlm.report import emit_json, info

    t0 = time.perf_counter()
    stream = fill_mask_input(request)  # before the model: a wrong path fails at once
    filler = load_filler(plugin, request)
    if verbose:
        info(f"model loaded in {time.perf_counter() - t0:.2f} s")
    if stream is not None:
        return fill_stream(filler, stream, request.batch())
    result = fill_one(filler, request.text)
    if json_out:
        emit_json(result)
    else:
        sys.stdout.write("".join(f"{line}\n" for line in fill_lines(result)))
        sys.stdout.flush()
    return 0

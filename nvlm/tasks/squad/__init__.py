"""SQuAD for span-extraction fine-tuning: read, featurize (with a cache), decode.

    from nvlm.data.vocab import Vocab
    from nvlm.tasks.squad import decode_predictions, load_or_featurize, read_squad
    from nvlm.tasks.squad.metrics import evaluate

    dataset = read_squad("dev-v1.1.json")                      # checked: UserError on bad records
    vocab = Vocab.load("vocab.txt")
    features, hit = load_or_featurize(dataset, vocab, "RUN/cache", lowercase=True)
    features.truncated_queries                                  # the CLI warns once if > 0
    # ... run the model over features.inputs() -> start_logits, end_logits [N, seq_len]
    preds = decode_predictions(dataset, features, start_logits, end_logits)
    preds.write("RUN/eval")          # predictions.json, nbest_predictions.json (+ null_odds.json)
    scores = evaluate(dataset.gold_answers(), preds.predictions, dataset.version, preds.null_odds)

See docs/squad.md for the feature layout, decoding rules, metric semantics and cache keys.
"""

from __future__ import annotations

from nvlm.tasks.squad.cache import FEATURE_FORMAT, cache_key, load_or_featurize
from nvlm.tasks.squad.dataset import SquadDataset
from nvlm.tasks.squad.example import SquadExample
from nvlm.tasks.squad.features import DOC_STRIDE, MAX_QUERY_LEN, SEQ_LEN, featurize
from nvlm.tasks.squad.postprocess import (
    MAX_ANSWER_LEN,
    N_BEST,
    NULL_THRESHOLD,
    answer_example,
    bert_candidates,
    bert_null,
    decode_predictions,
    valid_span,
)
from nvlm.tasks.squad.predictions import SquadPredictions
from nvlm.tasks.squad.reader import parse_squad, read_squad
from nvlm.tasks.squad.span_candidate import SpanCandidate
from nvlm.tasks.squad.squad_features import SquadFeatures

__all__ = [
    "DOC_STRIDE",
    "FEATURE_FORMAT",
    "MAX_ANSWER_LEN",
    "MAX_QUERY_LEN",
    "N_BEST",
    "NULL_THRESHOLD",
    "SEQ_LEN",
    "SpanCandidate",
    "SquadDataset",
    "SquadExample",
    "SquadFeatures",
    "SquadPredictions",
    "answer_example",
    "bert_candidates",
    "bert_null",
    "cache_key",
    "decode_predictions",
    "featurize",
    "load_or_featurize",
    "parse_squad",
    "read_squad",
    "valid_span",
]

"""What BERT's and ELECTRA's `convert --to nvlm` share: the data settings of the run an
imported checkpoint becomes. A Hugging Face directory records none (its `model_max_length` is
the position limit, not a training length), so the run gets the published SQuAD shapes (seq 384,
query 64, stride 128) or the phase-1 length 128, each cut to fit the model's positions and each
left to a `--set` the user gave — the run's config must validate, or the import fails."""

from __future__ import annotations

from collections.abc import Iterable

SQUAD_SEQ_LEN, SQUAD_QUERY_LEN, SQUAD_STRIDE = 384, 64, 128
PRETRAIN_SEQ_LEN = 128


def imported_data_settings(stage: str, max_position: int, sets: Iterable[str] = ()) -> dict:
    """{dotted data key: value} for a run of `stage` made from a checkpoint of `max_position`
    positions, without the keys `sets` gives (those come from --set, and the lengths derived
    here follow them: `--set data.seq_len=128` gets a query and a stride that fit 128)."""
    from nvlm.config import parse_sets

    given = parse_sets(sets)
    if stage != "squad":
        values = {"data.seq_len": min(PRETRAIN_SEQ_LEN, max_position)}
        return {k: v for k, v in values.items() if k not in given}
    seq = int(given.get("data.seq_len", min(SQUAD_SEQ_LEN, max_position)))
    query = int(given.get("data.max_query_len", min(SQUAD_QUERY_LEN, seq // 4)))
    values = {
        "data.seq_len": seq,
        "data.max_query_len": query,
        # At most the window left after the query, so that every answer fits one window.
        "data.doc_stride": max(1, min(SQUAD_STRIDE, seq - query - 3)),
    }
    return {k: v for k, v in values.items() if k not in given}

"""`nvlm data pretraining`: BERT/ELECTRA pretraining shards (library: nvlm.data.pretraining)."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.data.options import (
    ErrorsOption,
    InputOption,
    LowercaseFlag,
    SplitterLangOption,
    WorkersOption,
    given_inputs,
    overwrite_option,
)
from nvlm.cli.data.summary import finish
from nvlm.cli.options import JsonFlag
from nvlm.data.stop_signal import sigterm_stops
from nvlm.report import console


class Model(StrEnum):
    bert = "bert"
    electra = "electra"


# The longer declarations of this command's own options, so that its signature reads as a list.
ModelChoice = Annotated[
    Model,
    typer.Option(
        "--model", "-m", help="bert: masked sentence pairs + NSP; electra: packed, unmasked."
    ),
]
MaxPredictionsOption = Annotated[
    int | None,
    typer.Option(
        "--max-predictions", help="Masked positions per instance at most (BERT; default 20)."
    ),
]
MaskedLmProbOption = Annotated[
    float | None,
    typer.Option("--masked-lm-prob", help="Share of tokens masked (BERT; default 0.15)."),
]
DupeFactorOption = Annotated[
    int | None,
    typer.Option("--dupe-factor", help="Passes over the corpus (default: 5 BERT, 1 ELECTRA)."),
]
ShortSeqProbOption = Annotated[
    float | None,
    typer.Option(
        "--short-seq-prob",
        help="Chance of a shorter target length (default: 0.1 BERT, 0.05 ELECTRA).",
    ),
]
HoldoutOption = Annotated[
    float | None,
    typer.Option(
        "--holdout-documents",
        help="Documents kept out of training, as a held-out shard set in OUT/heldout/: a count "
        "(1 or more), or a fraction if below 1 (0.01 = 1% of the documents).",
    ),
]
SplitSentencesFlag = Annotated[
    bool,
    typer.Option(
        "--split-sentences",
        help="Input lines are paragraphs: split them into sentences (pysbd).",
    ),
]


def pretraining(
    ctx: typer.Context,
    model: ModelChoice,
    vocab: Annotated[
        Path, typer.Option("--vocab", help="WordPiece vocab.txt (see `nvlm data vocab`).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory for shards and manifest.json.")
    ],
    inputs: InputOption = None,
    seq_len: Annotated[
        int, typer.Option("--seq-len", help="Tokens per instance, specials included (8-512).")
    ] = 128,
    max_predictions: MaxPredictionsOption = None,
    masked_lm_prob: MaskedLmProbOption = None,
    dupe_factor: DupeFactorOption = None,
    short_seq_prob: ShortSeqProbOption = None,
    shards: Annotated[
        int, typer.Option("--shards", help="HDF5 files to write; 0 = one per 64 MiB of input.")
    ] = 0,
    workers: WorkersOption = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice.")] = 12345,
    holdout_documents: HoldoutOption = None,
    lowercase: LowercaseFlag = True,
    whole_word_masking: Annotated[
        bool, typer.Option("--whole-word-masking", help="Mask every piece of a chosen word (BERT).")
    ] = False,
    split_sentences: SplitSentencesFlag = False,
    lang: SplitterLangOption = "en",
    errors: ErrorsOption = "strict",
    overwrite: overwrite_option("what --out holds, even if made with other parameters") = False,
    json_: JsonFlag = False,
) -> None:
    r"""Make pretraining shards (HDF5) and manifest.json from text: one sentence per line, blank line between documents.

    Re-running the same command keeps finished shards and makes only the missing ones.

    --holdout-documents keeps whole documents (drawn from --seed) out of the training shards and makes OUT/heldout/ from them, for `nvlm eval --data OUT/heldout` and `nvlm pretrain --eval-data OUT/heldout`.

    Example:

        nvlm data pretraining --model bert --input corpus/ --vocab vocab.txt \
          --out data/bert-128 --shards 8 --workers 4 --holdout-documents 0.01
    """
    from nvlm.data.inputs import expand_inputs
    from nvlm.data.pretraining.config import PretrainingConfig
    from nvlm.data.pretraining.prepare import prepare_pretraining
    from nvlm.data.progress import PipelineProgress
    from nvlm.outputs import refuse_inputs

    cfg = PretrainingConfig.create(
        model.value, seq_len=seq_len, max_predictions=max_predictions, masked_lm_prob=masked_lm_prob,
        dupe_factor=dupe_factor, short_seq_prob=short_seq_prob, shards=shards, seed=seed,
        lowercase=lowercase, whole_word_masking=whole_word_masking, split_sentences=split_sentences,
        lang=lang, errors=errors, holdout_documents=holdout_documents,
    )  # fmt: skip
    if model is Model.electra and (max_predictions or masked_lm_prob or whole_word_masking):
        console().print(
            "[yellow]warning:[/yellow] ELECTRA shards are unmasked; masking options are ignored"
        )
    specs = given_inputs(ctx, inputs)
    refuse_inputs(out, {"--input": specs, "--vocab": vocab})
    # A directory input may hold this --out: an earlier run's shards are not text.
    paths = expand_inputs(specs, exclude=out)
    with sigterm_stops("data pretraining", "finished shards are kept: re-run to resume"):
        summary = prepare_pretraining(
            cfg, paths, vocab, out, workers=workers or os.cpu_count() or 1, overwrite=overwrite,
            progress=PipelineProgress,  # on stderr: it never mixes with --json on stdout
        )  # fmt: skip
    keys = (
        "out documents sentences tokens instances masked_tokens shards shards_built shards_kept "
        "workers tokens_per_second seconds"
    )
    if "heldout" in summary and not json_:
        # The table is flat: the held-out set's figures go in as rows of their own.
        summary = {**summary, **{f"held-out_{k}": v for k, v in summary["heldout"].items()}}
        keys += " held-out_out held-out_documents held-out_instances held-out_shards"
    finish(f"nvlm data pretraining ({summary['model']})", summary, json_, keys)

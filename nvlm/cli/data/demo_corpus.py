"""`nvlm data demo-corpus`: synthetic text (and SQuAD and labelled files) for demos and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.data.options import overwrite_option
from nvlm.cli.data.summary import finish
from nvlm.cli.options import JsonFlag


def demo_corpus(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write corpus.txt into.")],
    documents: Annotated[
        int, typer.Option("--documents", "-n", help="Documents to generate.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same text.")] = 0,
    squad: Annotated[
        str | None,
        typer.Option("--squad", help="Also write squad-train.json / squad-dev.json (1.1 or 2.0)."),
    ] = None,
    classify: Annotated[
        bool,
        typer.Option(
            "--classify",
            help="Also write classify-train.jsonl / classify-dev.jsonl (text, label: "
            "positive|negative) for nvlm finetune --task classify.",
        ),
    ] = False,
    overwrite: overwrite_option(
        "corpus.txt (and the SQuAD and classify files) if --out holds them"
    ) = False,
    json_: JsonFlag = False,
) -> None:
    """Write a synthetic corpus (made-up people, towns and dishes; our own templates) for demos and tests.

    Example:

        nvlm data demo-corpus --out demo-data --documents 2000 --squad 1.1 --classify
    """
    from nvlm.data.demo import write_demo_set

    summary = write_demo_set(
        out, documents=documents, seed=seed, squad=squad, classify=classify, overwrite=overwrite
    )
    fields = "path documents sentences words"
    if squad:
        fields += " train dev train_questions dev_questions"
    if classify:
        fields += " classify_train classify_dev classify_train_examples classify_dev_examples"
    finish("nvlm data demo-corpus", summary, json_, fields)

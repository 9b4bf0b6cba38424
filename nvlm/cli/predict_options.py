"""The options of `nvlm predict` (Annotated aliases, kept apart so that the command stays thin)."""

from __future__ import annotations

from typing import Annotated

import typer

Question = Annotated[str | None, typer.Option("--question", "-q", help="squad: the question.")]
Context = Annotated[str | None, typer.Option("--context", "-c", help="squad: the passage.")]
Input = Annotated[
    str | None,
    typer.Option(
        "--input",
        help='File (or - for stdin), one input per line: squad {"id"?, "question", "context"}; '
        'features, score, fill-mask: a text or {"id"?, "text"}; classify: a text or '
        '{"id"?, "text", "text_pair"?}. One JSON line out per line in.',
    ),
]
Task = Annotated[
    str | None,
    typer.Option(
        "--task",
        help="bert: squad (the default) | features (the default with --text) | classify | "
        "fill-mask; electra: squad (the default) | features (the default with --text) | "
        "classify | fill-mask (the generator); transformer-xl: next (the default with --text) | generate | score (the default with "
        "--input). An option of another task is refused.",
    ),
]
Text = Annotated[
    str | None,
    typer.Option("--text", help="One text (next, generate: context; fill-mask: with [MASK])."),
]
Pair = Annotated[
    str | None,
    typer.Option("--pair", help="classify: the second text of a pair (with --text)."),
]
TopK = Annotated[
    int | None,
    typer.Option(
        "--top-k",
        min=1,
        help="squad: also list the N best answers; generation: sample among the K most "
        "probable; fill-mask: the K most probable tokens per [MASK] (default 5).",
    ),
]
NextWords = Annotated[
    int | None,
    typer.Option("--next", min=1, help="next: the N most probable next words (default 5)."),
]
Generate = Annotated[
    int | None,
    typer.Option("--generate", min=1, help="generate: continue --text by K words (default 20)."),
]
Temperature = Annotated[
    float | None,
    typer.Option("--temperature", help="generation: sample at this temperature (not greedy)."),
]
Seed = Annotated[int, typer.Option("--seed", help="generate: random seed of sampling.")]
Layer = Annotated[int | None, typer.Option("--layer", help="features: layer K (0 = embeddings).")]
Pooled = Annotated[
    bool, typer.Option("--pooled", help="features: the old spelling of --pooling pooler.")
]
Pooling = Annotated[
    str | None,
    typer.Option(
        "--pooling",
        help='features: one vector per text, as "embedding": cls ([CLS]) | mean (over the real '
        "tokens) | pooler (BERT's pooled output).",
    ),
]
Normalize = Annotated[
    bool, typer.Option("--normalize", help="features: L2-normalise the --pooling vector.")
]
Part = Annotated[
    str | None,
    typer.Option(
        "--part",
        help="features: the encoder of ELECTRA, discriminator (the default) | generator.",
    ),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Print the model load time.")]

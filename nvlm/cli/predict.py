"""`nvlm predict`: answers, encoder features and scores from a trained model, for people (one
answer) and for pipelines (JSONL in, JSONL out, streaming)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from nvlm.cli.options import (
    BatchSizeOption,
    BeamSizeOption,
    InitOption,
    JsonFlag,
    ModelOption,
    NullThresholdOption,
)
from nvlm.report import emit_json, emit_jsonl, info
from nvlm.tasks import prediction  # light: no model code until a function is called

Question = Annotated[
    str | None, typer.Option("--question", "-q", help="The question (with --context).")
]
Context = Annotated[
    str | None,
    typer.Option("--context", "-c", help="The passage that holds the answer."),
]
Input = Annotated[
    str | None,
    typer.Option(
        "--input",
        help='JSONL file (or - for stdin): {"id"?, "question", "context"} per line (features: texts). One JSON answer per line on stdout.',
    ),
]
Task = Annotated[
    str | None,
    typer.Option(
        "--task",
        help="squad (question answering; the default) | features (encoder output) | "
        "transformer-xl: next | generate | score",
    ),
]
Text = Annotated[
    str | None,
    typer.Option("--text", help="features: one text to encode; transformer-xl: the context."),
]
TopK = Annotated[
    int | None,
    typer.Option(
        "--top-k",
        min=1,
        help="squad: also list the N best answers; generation: sample among the K most probable.",
    ),
]
NextWords = Annotated[
    int | None,
    typer.Option("--next", min=1, help="transformer-xl: the N most probable next words."),
]
Generate = Annotated[
    int | None,
    typer.Option("--generate", min=1, help="transformer-xl: continue --text by K words."),
]
Temperature = Annotated[
    float | None,
    typer.Option("--temperature", help="generation: sample at this temperature (not greedy)."),
]
Seed = Annotated[int, typer.Option("--seed", help="generation: random seed of sampling.")]
Layer = Annotated[
    int | None,
    typer.Option("--layer", help="features: layer K (0 = embeddings, -1 = last)."),
]
Pooled = Annotated[bool, typer.Option("--pooled", help="features: the pooled [CLS] output.")]
Verbose = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Print the model start-up time on stderr."),
]


def predict(
    model: ModelOption,
    init: InitOption,
    question: Question = None,
    context: Context = None,
    input: Input = None,
    task: Task = None,
    text: Text = None,
    top_k: TopK = None,
    next_words: NextWords = None,
    generate: Generate = None,
    temperature: Temperature = None,
    seed: Seed = 0,
    null_threshold: NullThresholdOption = None,
    beam_size: BeamSizeOption = None,
    layer: Layer = None,
    pooled: Pooled = False,
    batch_size: BatchSizeOption = 8,
    verbose: Verbose = False,
    json_out: JsonFlag = False,
) -> None:
    r"""Answer questions about a passage, or print encoder features; JSONL in, JSONL out for pipelines (streaming: answers appear while input is still arriving).

    With --input, each line gets one JSON line on stdout, in order: the answer, or {"line": N, "error": "..."} for a line that cannot be answered (not JSON, not UTF-8, a field of the wrong type, longer than 4 MiB); the exit status is then 1. See docs/squad.md.

    Examples:

        nvlm predict --model bert --init runs/squad \
          --question "What food does Harry like?" \
          --context "My name is Harry and I grew up in Canada. I love apples."

        cat questions.jsonl | nvlm predict -m bert --init runs/squad --input -

        nvlm predict --model bert --init runs/bert-p1 --task features \
          --text "the cat sat" --pooled
    """
    from nvlm import registry

    request = prediction.PredictRequest(
        init,
        task=task,
        question=question,
        context=context,
        input=input,
        text=text,
        top_k=top_k,
        next_words=next_words,
        generate=generate,
        temperature=temperature,
        seed=seed,
        null_threshold=null_threshold,
        beam_size=beam_size,
        layer=layer,
        pooled=pooled,
        batch_size=batch_size,
    )
    plugin = registry.get(model)
    if plugin.provides("language_model"):  # Transformer-XL: next words, generation, scoring
        failed = _language_model(plugin, request, verbose=verbose, json_out=json_out)
    elif prediction.encoder_task(plugin, model, request) == "features":
        failed = _features(request, verbose=verbose)
    else:
        failed = _answers(plugin, request, verbose=verbose, json_out=json_out)
    if failed:
        raise typer.Exit(1)


def _features(request, *, verbose: bool) -> int:
    """Encoder features of --text (one JSON line) or of each --input line; the failed lines."""
    from nvlm.plugins.bert.feature_extractor import FeatureExtractor

    t0 = time.perf_counter()
    stream = prediction.features_input(request)
    extract = FeatureExtractor(request.init, layer=request.layer, pooled=request.pooled)
    if verbose:
        info(f"model loaded in {time.perf_counter() - t0:.2f} s")
    if stream is None:
        emit_jsonl(extract([request.text])[0])
        return 0
    return prediction.features_stream(extract, stream, request.batch_size)


def _answers(plugin, request, *, verbose: bool, json_out: bool) -> int:
    """The answer to --question (for people, or --json), or to each --input line."""
    t0 = time.perf_counter()
    stream = prediction.qa_input(request)
    answerer = prediction.load_answerer(plugin, request)
    if verbose:
        info(f"model loaded in {time.perf_counter() - t0:.2f} s")
    if stream is not None:
        return prediction.answer_stream(answerer, stream, request.batch_size)
    answer = prediction.answer_one(answerer, request.question, request.context)
    if json_out:
        emit_json(answer)
        return 0
    shown, notes = prediction.answer_lines(answer)  # the answer on stdout, the figures on stderr
    typer.echo(shown)
    for note in notes:
        typer.echo(note, err=True)
    return 0


def _language_model(plugin, request, *, verbose: bool, json_out: bool) -> int:
    """Next words after --text, its continuation, or the scores of each --input line."""
    t0 = time.perf_counter()
    task = prediction.lm_task(plugin, request)
    stream = prediction.input_stream(request)
    lm = plugin.language_model(request.init)
    if verbose:
        info(f"model loaded in {time.perf_counter() - t0:.2f} s")
    if task == "score":
        return prediction.score_stream(lm, stream, request.batch_size)
    result = prediction.lm_predict(lm, task, request)  # warns of words not in the vocabulary
    if json_out:
        emit_json(result)
        return 0
    for line in prediction.lm_lines(task, request, result):
        typer.echo(line)
    return 0

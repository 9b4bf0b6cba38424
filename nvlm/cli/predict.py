"""`nvlm predict`: answers, encoder features, next words, generation and scores from a trained
model, for people (one answer) and for pipelines (JSONL in, JSONL out, streaming). An option
that does not apply to the task is refused before a model is loaded (`prediction.predict_task`)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from nvlm.cli.options import (
    BatchSizeOption,
    BeamSizeOption,
    InitOption,
    JsonFlag,
    NullThresholdOption,
    OptionalModelOption,
)
from nvlm.report import emit_json, emit_jsonl, info
from nvlm.tasks import prediction  # light: no model code until a function is called

Question = Annotated[str | None, typer.Option("--question", "-q", help="squad: the question.")]
Context = Annotated[str | None, typer.Option("--context", "-c", help="squad: the passage.")]
Input = Annotated[
    str | None,
    typer.Option(
        "--input",
        help='File (or - for stdin), one input per line: squad {"id"?, "question", "context"}; '
        'features, score: a text or {"text"}. One JSON line out per line in.',
    ),
]
Task = Annotated[
    str | None,
    typer.Option(
        "--task",
        help="bert: squad (the default) | features (the default with --text); electra: squad; "
        "transformer-xl: next (the default with --text) | generate | score (the default with "
        "--input). An option of another task is refused.",
    ),
]
Text = Annotated[str | None, typer.Option("--text", help="One text (next, generate: context).")]
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
Pooled = Annotated[bool, typer.Option("--pooled", help="features: the pooled [CLS] output.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Print the model load time.")]


def predict(
    ctx: typer.Context,
    init: InitOption,
    model: OptionalModelOption = None,
    question: Question = None,
    context: Context = None,
    input: Input = None,
    task: Task = None,
    text: Text = None,
    top_k: TopK = None,
    next_words: NextWords = None,
    generate: Generate = None,
    temperature: Temperature = None,
    seed: Seed = prediction.DEFAULT_SEED,
    null_threshold: NullThresholdOption = None,
    beam_size: BeamSizeOption = None,
    layer: Layer = None,
    pooled: Pooled = False,
    batch_size: BatchSizeOption = prediction.DEFAULT_BATCH,
    verbose: Verbose = False,
    json_out: JsonFlag = False,
) -> None:
    r"""Answer questions about a passage, print encoder features, next words, a continuation or scores; JSONL in, JSONL out for pipelines (streaming: answers appear while input is still arriving).

    With --input, each line gets one JSON line on stdout, in order: the answer, or {"line": N, "error": "..."} for a line that cannot be answered (not JSON, not UTF-8, a field of the wrong type, longer than 4 MiB); the exit status is then 1. See docs/squad.md.

    Examples:

        nvlm predict --model bert --init runs/squad \
          --question "What food does Harry like?" \
          --context "My name is Harry and I grew up in Canada. I love apples."

        cat questions.jsonl | nvlm predict -m bert --init runs/squad --input -

        nvlm predict --model bert --init runs/bert-p1 --task features \
          --text "the cat sat" --pooled

        nvlm predict -m transformer-xl --init runs/txl --task score \
          --text "the cat sat"

    An option that does not apply to the task (e.g. --next with --input, which scores lines) is refused (exit 2); which option applies to which task: docs/training.md.
    """
    from nvlm import registry
    from nvlm.tasks.inference import model_of_init

    # Typed, not defaulted: an option the user did not type is never refused.
    typed = {k for k in ("seed", "batch_size") if ctx.get_parameter_source(k).name != "DEFAULT"}
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
        seed=seed if "seed" in typed else None,
        null_threshold=null_threshold,
        beam_size=beam_size,
        layer=layer,
        pooled=pooled,
        batch_size=batch_size if "batch_size" in typed else None,
    )
    plugin = registry.get(model := model_of_init(init, model))
    task = prediction.predict_task(plugin, model, request)  # every option checked, nothing loaded
    if task in prediction.LM_TASKS:  # Transformer-XL: next words, generation, scoring
        failed = _language_model(plugin, task, request, verbose=verbose, json_out=json_out)
    elif task == "features":
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
    return prediction.features_stream(extract, stream, request.batch())


def _answers(plugin, request, *, verbose: bool, json_out: bool) -> int:
    """The answer to --question (for people, or --json), or to each --input line."""
    t0 = time.perf_counter()
    stream = prediction.qa_input(request)
    answerer = prediction.load_answerer(plugin, request)
    if verbose:
        info(f"model loaded in {time.perf_counter() - t0:.2f} s")
    if stream is not None:
        return prediction.answer_stream(answerer, stream, request.batch())
    answer = prediction.answer_one(answerer, request.question, request.context)
    if json_out:
        emit_json(answer)
        return 0
    shown, notes = prediction.answer_lines(answer)  # the answer on stdout, the figures on stderr
    typer.echo(shown)
    for note in notes:
        typer.echo(note, err=True)
    return 0


def _language_model(plugin, task: str, request, *, verbose: bool, json_out: bool) -> int:
    """Next words, a continuation, or the scores of --text or of each --input line."""
    t0 = time.perf_counter()
    stream = prediction.input_stream(request)
    lm = plugin.language_model(request.init)
    if verbose:
        info(f"model loaded in {time.perf_counter() - t0:.2f} s")
    if task == "score" and stream is None:  # one --text: the line --input would print for it
        emit_jsonl(prediction.score_one(lm, request.text))
        return 0
    if task == "score":
        return prediction.score_stream(lm, stream, request.batch())
    result = prediction.lm_predict(lm, task, request)  # warns of words not in the vocabulary
    if json_out:
        emit_json(result)
        return 0
    for line in prediction.lm_lines(task, request, result):
        typer.echo(line)
    return 0

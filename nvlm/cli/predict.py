"""`nvlm predict`: answers, encoder features, next words, generation and scores from a trained
model, for people (one answer) and for pipelines (JSONL in, JSONL out, streaming). An option
that does not apply to the task is refused before a model is loaded (`prediction.predict_task`)."""

from __future__ import annotations

import time

import typer

from nvlm.cli.options import (
    BatchSizeOption,
    BeamSizeOption,
    InitOption,
    JsonFlag,
    NullThresholdOption,
    OptionalModelOption,
    PrecisionOption,
    PresetOption,
    SetOption,
    XlaOption,
)
from nvlm.cli.predict_options import (
    Context,
    Generate,
    Input,
    Layer,
    NextWords,
    Normalize,
    Pair,
    Part,
    Pooled,
    Pooling,
    Question,
    Seed,
    Task,
    Temperature,
    Text,
    TopK,
    Verbose,
)
from nvlm.report import emit_json, emit_jsonl, info
from nvlm.tasks import prediction  # light: no model code until a function is called


def predict(
    ctx: typer.Context,
    init: InitOption,
    model: OptionalModelOption = None,
    question: Question = None,
    context: Context = None,
    input: Input = None,
    task: Task = None,
    text: Text = None,
    pair: Pair = None,
    top_k: TopK = None,
    next_words: NextWords = None,
    generate: Generate = None,
    temperature: Temperature = None,
    seed: Seed = prediction.DEFAULT_SEED,
    null_threshold: NullThresholdOption = None,
    beam_size: BeamSizeOption = None,
    layer: Layer = None,
    pooled: Pooled = False,
    pooling: Pooling = None,
    normalize: Normalize = False,
    part: Part = None,
    batch_size: BatchSizeOption = prediction.DEFAULT_BATCH,
    precision: PrecisionOption = None,
    xla: XlaOption = None,
    preset: PresetOption = None,
    sets: SetOption = None,
    verbose: Verbose = False,
    json_out: JsonFlag = False,
) -> None:
    r"""Answer questions about a passage, label texts, print encoder features, next words, a continuation or scores; JSONL in, JSONL out for pipelines (streaming: answers appear while input is still arriving).

    With --input, each line gets one JSON line on stdout, in order: the answer, or {"line": N, "error": "..."} for a line that cannot be answered (not JSON, not UTF-8, a field of the wrong type, longer than 4 MiB); the exit status is then 1. See docs/squad.md.

    Examples:

        nvlm predict --model bert --init runs/squad \
          --question "What food does Harry like?" \
          --context "My name is Harry and I grew up in Canada. I love apples."

        cat questions.jsonl | nvlm predict -m bert --init runs/squad --input -

        nvlm predict --model bert --init runs/bert-p1 --task features \
          --text "the cat sat" --pooling mean --normalize

        nvlm predict --init runs/sst2 --task classify --text "a fine film"

        nvlm predict -m transformer-xl --init runs/txl --task score \
          --text "the cat sat"

    Precision and XLA are the run's (or --preset's), overridable with --precision, --xla/--no-xla and --set. An option that does not apply to the task (e.g. --next with --input, which scores lines) is refused (exit 2); which option applies to which task: docs/training.md.
    """
    options = dict(locals())  # first: the options exactly as given
    from nvlm import registry
    from nvlm.tasks.inference import model_of_init

    # Typed, not defaulted: an option the user did not type is never refused.
    typed = {k for k in ("seed", "batch_size") if ctx.get_parameter_source(k).name != "DEFAULT"}
    request = prediction.PredictRequest.of_options(options, typed=typed)
    plugin = registry.get(model := model_of_init(init, model))
    task = prediction.predict_task(plugin, model, request)  # every option checked, nothing loaded
    if task in prediction.LM_TASKS:  # Transformer-XL: next words, generation, scoring
        failed = _language_model(plugin, task, request, verbose=verbose, json_out=json_out)
    elif task == "features":
        failed = _features(plugin, model, request, verbose=verbose)
    elif task == "classify":
        failed = _classify(plugin, request, verbose=verbose, json_out=json_out)
    elif task == prediction.FILL_MASK:
        failed = _fill_mask(plugin, request, verbose=verbose, json_out=json_out)
    else:
        failed = _answers(plugin, request, verbose=verbose, json_out=json_out)
    if failed:
        raise typer.Exit(1)


def _fill_mask(plugin, request, *, verbose: bool, json_out: bool) -> int:
    """The tokens of each [MASK] in --text (for people, or --json), or of each --input line."""
    from nvlm.tasks.fill_mask import run

    return run(plugin, request, verbose=verbose, json_out=json_out)  # prints them


def _classify(plugin, request, *, verbose: bool, json_out: bool) -> int:
    """The label of --text [--pair] (for people: the label, then the probabilities on stderr;
    or --json), or of each --input line."""
    from nvlm.tasks.classify.prediction import run

    return run(plugin, request, verbose=verbose, json_out=json_out)  # prints them


def _features(plugin, model: str, request, *, verbose: bool) -> int:
    """Encoder features of --text (one JSON line) or of each --input line; the failed lines."""
    t0 = time.perf_counter()
    stream = prediction.features_input(request)
    extract = prediction.load_features(plugin, model, request)
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
    lm = plugin.language_model(request.init, **request.load_options())
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

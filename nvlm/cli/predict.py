"""`nvlm predict`: answers, encoder features and scores from a trained model, for people (one
answer) and for pipelines (JSONL in, JSONL out, streaming)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from nvlm.cli.jsonl_pipeline import json_type, open_input, run_pipeline, string_field
from nvlm.cli.options import JsonFlag, ModelOption
from nvlm.errors import UserError


def _check_text_arg(option: str, value: str | None) -> None:
    """A command-line text must be valid Unicode: bytes that are not UTF-8 reach Python as
    lone surrogates, which the tokenizer rejects with a TypeError."""
    if value is None:
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{option} is not UTF-8 text (pass it in UTF-8)") from None


def predict(
    model: ModelOption,
    init: Annotated[
        str,
        typer.Option(
            "--init",
            help="An nvlm run/checkpoint, a Hugging Face directory or a Google checkpoint.",
        ),
    ],
    question: Annotated[
        str | None, typer.Option("--question", "-q", help="The question (with --context).")
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", "-c", help="The passage that holds the answer.")
    ] = None,
    input: Annotated[
        str | None,
        typer.Option(
            "--input",
            help='JSONL file (or - for stdin): {"id"?, "question", "context"} per line (features: texts). One JSON answer per line on stdout.',
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="squad (question answering; the default) | features (encoder output) | "
            "transformer-xl: next | generate | score",
        ),
    ] = None,
    text: Annotated[
        str | None,
        typer.Option("--text", help="features: one text to encode; transformer-xl: the context."),
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option(
            "--top-k",
            min=1,
            help="squad: also list the N best answers; generation: sample among the K most probable.",
        ),
    ] = None,
    next_words: Annotated[
        int | None,
        typer.Option("--next", min=1, help="transformer-xl: the N most probable next words."),
    ] = None,
    generate: Annotated[
        int | None,
        typer.Option("--generate", min=1, help="transformer-xl: continue --text by K words."),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option("--temperature", help="generation: sample at this temperature (not greedy)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="generation: random seed of sampling.")] = 0,
    null_threshold: Annotated[
        float | None,
        typer.Option(
            "--null-threshold", help="squad v2.0 models: no-answer threshold (BERT default 0.0)."
        ),
    ] = None,
    beam_size: Annotated[
        int | None,
        typer.Option(
            "--beam-size",
            help="squad, joint answer heads (electra): start and end positions kept (default 4).",
        ),
    ] = None,
    layer: Annotated[
        int | None, typer.Option("--layer", help="features: layer K (0 = embeddings, -1 = last).")
    ] = None,
    pooled: Annotated[
        bool, typer.Option("--pooled", help="features: the pooled [CLS] output.")
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Inputs per forward pass (pipelines).")
    ] = 8,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print the model start-up time on stderr.")
    ] = False,
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
    import time

    from nvlm import registry
    from nvlm.report import emit_json, emit_jsonl, info

    plugin = registry.get(model)
    if plugin.provides("language_model"):  # Transformer-XL: next words, generation, scoring
        _predict_lm(plugin, init, text=text, input=input, task=task, next_words=next_words,
                    generate=generate, temperature=temperature, top_k=top_k, seed=seed,
                    batch_size=batch_size, verbose=verbose, json_out=json_out)  # fmt: skip
        return
    top_k = top_k or 1
    task = task or ("features" if text is not None else "squad")
    if task == "qa":
        task = "squad"
    if task not in plugin.tasks:
        raise UserError(
            f"model {model} cannot predict task {task!r} (tasks: {', '.join(plugin.tasks)})"
        )
    t0 = time.perf_counter()
    if task == "features":
        if (text is None) == (input is None):
            raise UserError("--task features needs exactly one of --text TEXT or --input FILE|-")
        _check_text_arg("--text", text)
        stream = open_input(input) if input is not None else None
        from nvlm.plugins.bert.feature_extractor import FeatureExtractor

        fx = FeatureExtractor(init, layer=layer, pooled=pooled)
        if verbose:
            info(f"model loaded in {time.perf_counter() - t0:.2f} s")
        if text is not None:
            emit_jsonl(fx([text])[0])
            return
        failed = run_pipeline(stream, batch_size, _parse_text, fx)
    else:
        if input is None and (question is None or context is None):
            raise UserError("give --question and --context (or --input FILE|- with JSONL lines)")
        if input is not None and (question is not None or context is not None):
            raise UserError("give either --question/--context or --input, not both")
        if input is None and not context.strip():
            raise UserError("--context is empty (pass the passage that holds the answer)")
        if input is None and not question.strip():
            raise UserError("--question is empty (pass the question to answer)")
        _check_text_arg("--question", question)
        _check_text_arg("--context", context)
        stream = open_input(input) if input is not None else None
        from nvlm.cli.eval import load_model
        from nvlm.tasks.squad.task import Answerer, beam_size_flags

        cfg, net = load_model(plugin, init, "squad", flags=beam_size_flags(plugin, beam_size))
        answerer = Answerer(
            plugin,
            cfg,
            net,
            init,
            null_threshold=null_threshold,
            top_k=top_k,
            window_batch=batch_size,
        )
        if verbose:
            info(f"model loaded in {time.perf_counter() - t0:.2f} s")
        if input is None:
            [answer] = answerer.answer([{"id": "q", "question": question, "context": context}])
            answer.pop("id")
            if json_out:
                emit_json(answer)
            else:
                _print_answer(answer)
            return
        failed = run_pipeline(stream, batch_size, _parse_qa, answerer.answer)
    if failed:
        raise typer.Exit(1)


def _print_answer(answer: dict) -> None:
    if answer["no_answer"]:
        typer.echo("(no answer)")
    else:
        typer.echo(answer["answer"])
        typer.echo(
            f"score {answer['score']}  probability {answer['probability']}  "
            f"characters {answer['start']}-{answer['end']}",
            err=True,
        )
    for alt in answer.get("alternatives", [])[1:]:
        typer.echo(
            f"  alternative: {alt['answer']!r} (probability {alt['probability']}, "
            f"characters {alt['start']}-{alt['end']})",
            err=True,
        )


def _parse_text(number: int, line: str):
    if line.lstrip().startswith("{"):
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise ValueError("expected a JSON object with a string 'text'")
        return string_field(obj, "text")
    return line


def _predict_lm(plugin, init: str, *, text, input, task, next_words, generate, temperature,
                top_k, seed, batch_size, verbose, json_out) -> None:  # fmt: skip
    import time

    from nvlm.report import emit_json, info, warn

    t0 = time.perf_counter()
    task = task or ("score" if input is not None else "generate" if generate else "next")
    if task not in ("next", "generate", "score"):
        raise UserError(
            f"--model {plugin.name} predicts --task next, generate or score, not {task!r}"
        )
    if task == "score" and (input is None or text is not None):
        raise UserError('--task score reads --input FILE|- (a text per line, or JSONL {"text"})')
    if task != "score" and (text is None or not text.strip() or input is not None):
        raise UserError(
            "give --text TEXT with --next N or --generate K (or --input FILE|- to score)"
        )
    if next_words is not None and generate is not None:
        raise UserError("give either --next N or --generate K, not both")
    _check_text_arg("--text", text)
    stream = open_input(input) if input is not None else None
    lm = plugin.language_model(init)
    if verbose:
        info(f"model loaded in {time.perf_counter() - t0:.2f} s")
    if task == "score":

        def parse(number: int, line: str) -> dict:
            item = {"line": number, "text": _parse_text(number, line)}
            if line.lstrip().startswith("{") and "id" in json.loads(line):
                item["id"] = json.loads(line)["id"]
            return item

        if run_pipeline(stream, batch_size, parse, lm.score):
            raise typer.Exit(1)
        return
    if task == "next":
        result = lm.next_words(text, next_words or 5)
    else:
        result = lm.generate(text, generate or 20, temperature=temperature, top_k=top_k, seed=seed)
    if result["unknown_words"]:
        warn(f"not in the vocabulary (read as <unk>): {', '.join(result['unknown_words'][:10])}")
    if json_out:
        emit_json(result)
    elif task == "next":
        for item in result["next"]:
            typer.echo(f"{item['word']}\t{item['probability']}")
    else:
        typer.echo(f"{text} {result['continuation']}")


def _parse_qa(number: int, line: str):
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError('expected a JSON object {"id"?, "question", "context"}')
    question = string_field(obj, "question")
    context = string_field(obj, "context")
    qid = obj.get("id")
    if qid is None:
        qid = number
    elif isinstance(qid, bool) or not isinstance(qid, (str, int)):
        raise ValueError(f"'id' must be a string or an integer, not {json_type(qid)}")
    return {"id": qid, "question": question, "context": context}

"""`nvlm predict` below its options: what a request asks for, its inputs checked before a model
is loaded (so that a wrong path or a missing option fails at once), the JSONL line formats of
`--input`, question answering and the language-model tasks (next words, generation, scoring).

    request = PredictRequest("runs/squad", question="Who?", context="Harry did.")
    answerer = load_answerer(registry.get("bert"), request)
    answer_one(answerer, request.question, request.context)    # {"answer": "Harry", ...}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import BinaryIO

from nvlm.errors import UserError
from nvlm.tasks.pipeline import json_type, open_input, run_pipeline, string_field


@dataclass(frozen=True)
class PredictRequest:
    """The options of one `nvlm predict` (None: not given)."""

    init: str
    task: str | None = None
    question: str | None = None
    context: str | None = None
    input: str | None = None  # a JSONL file, or "-" for stdin
    text: str | None = None
    top_k: int | None = None
    next_words: int | None = None
    generate: int | None = None
    temperature: float | None = None
    seed: int = 0
    null_threshold: float | None = None
    beam_size: int | None = None
    layer: int | None = None
    pooled: bool = False
    batch_size: int = 8


def check_text(option: str, value: str | None) -> None:
    """A command-line text must be valid Unicode: bytes that are not UTF-8 reach Python as
    lone surrogates, which the tokenizer rejects with a TypeError."""
    if value is None:
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{option} is not UTF-8 text (pass it in UTF-8)") from None


def input_stream(request: PredictRequest) -> BinaryIO | None:
    """The --input stream, opened before the model is loaded (a wrong path fails at once)."""
    return open_input(request.input) if request.input is not None else None


# -- the line formats of --input (a ValueError is that line's error) ------------------------------
def parse_text(number: int, line: str):
    """A text per line, or a JSON object {"text"}."""
    if line.lstrip().startswith("{"):
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise ValueError("expected a JSON object with a string 'text'")
        return string_field(obj, "text")
    return line


def parse_scored_text(number: int, line: str) -> dict:
    """A text to score, with its line number and the "id" of a JSON line."""
    item = {"line": number, "text": parse_text(number, line)}
    if line.lstrip().startswith("{") and "id" in json.loads(line):
        item["id"] = json.loads(line)["id"]
    return item


def parse_qa(number: int, line: str):
    """A JSON object {"id"?, "question", "context"}; the id defaults to the line number."""
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


# -- encoders: question answering and features ----------------------------------------------------
def encoder_task(plugin, model: str, request: PredictRequest) -> str:
    """The task asked of the encoder `model`: features when --text is given, else question
    answering; refused when the plugin has no such task."""
    task = request.task or ("features" if request.text is not None else "squad")
    if task == "qa":
        task = "squad"
    if task not in plugin.tasks:
        raise UserError(
            f"model {model} cannot predict task {task!r} (tasks: {', '.join(plugin.tasks)})"
        )
    return task


def features_input(request: PredictRequest) -> BinaryIO | None:
    """The --input stream of --task features, or None for one --text."""
    if (request.text is None) == (request.input is None):
        raise UserError("--task features needs exactly one of --text TEXT or --input FILE|-")
    check_text("--text", request.text)
    return input_stream(request)


def qa_input(request: PredictRequest) -> BinaryIO | None:
    """The --input stream of question answering, or None for one --question/--context."""
    question, context, source = request.question, request.context, request.input
    if source is None and (question is None or context is None):
        raise UserError("give --question and --context (or --input FILE|- with JSONL lines)")
    if source is not None and (question is not None or context is not None):
        raise UserError("give either --question/--context or --input, not both")
    if source is None and not context.strip():
        raise UserError("--context is empty (pass the passage that holds the answer)")
    if source is None and not question.strip():
        raise UserError("--question is empty (pass the question to answer)")
    check_text("--question", question)
    check_text("--context", context)
    return input_stream(request)


def load_answerer(plugin, request: PredictRequest):
    """The question-answering model of `request.init`, ready to answer batches."""
    from nvlm.tasks.inference import load_model
    from nvlm.tasks.squad.task import Answerer, beam_size_flags

    flags = beam_size_flags(plugin, request.beam_size)
    cfg, net = load_model(plugin, request.init, "squad", flags=flags)
    return Answerer(
        plugin,
        cfg,
        net,
        request.init,
        null_threshold=request.null_threshold,
        top_k=request.top_k or 1,
        window_batch=request.batch_size,
    )


def answer_one(answerer, question: str, context: str) -> dict:
    """The answer to one question (no id)."""
    [answer] = answerer.answer([{"id": "q", "question": question, "context": context}])
    answer.pop("id")
    return answer


def answer_lines(answer: dict) -> tuple[str, list[str]]:
    """One answer for people: the answer (stdout), then its figures and alternatives (stderr)."""
    if answer["no_answer"]:
        shown, notes = "(no answer)", []
    else:
        shown = answer["answer"]
        notes = [
            f"score {answer['score']}  probability {answer['probability']}  "
            f"characters {answer['start']}-{answer['end']}"
        ]
    for alt in answer.get("alternatives", [])[1:]:
        notes.append(
            f"  alternative: {alt['answer']!r} (probability {alt['probability']}, "
            f"characters {alt['start']}-{alt['end']})"
        )
    return shown, notes


def answer_stream(answerer, stream: BinaryIO, batch_size: int) -> int:
    """One JSON answer per JSONL line on stdout; the number of lines that failed."""
    return run_pipeline(stream, batch_size, parse_qa, answerer.answer)


def features_stream(extract, stream: BinaryIO, batch_size: int) -> int:
    """One JSON line of features per text line on stdout; the number of lines that failed."""
    return run_pipeline(stream, batch_size, parse_text, extract)


# -- language models (Transformer-XL) -------------------------------------------------------------
def lm_task(plugin, request: PredictRequest) -> str:
    """next, generate or score, checked against the options given with it."""
    text, source = request.text, request.input
    default = "score" if source is not None else "generate" if request.generate else "next"
    task = request.task or default
    if task not in ("next", "generate", "score"):
        raise UserError(
            f"--model {plugin.name} predicts --task next, generate or score, not {task!r}"
        )
    if task == "score" and (source is None or text is not None):
        raise UserError('--task score reads --input FILE|- (a text per line, or JSONL {"text"})')
    if task != "score" and (text is None or not text.strip() or source is not None):
        raise UserError(
            "give --text TEXT with --next N or --generate K (or --input FILE|- to score)"
        )
    if request.next_words is not None and request.generate is not None:
        raise UserError("give either --next N or --generate K, not both")
    check_text("--text", text)
    return task


def score_stream(lm, stream: BinaryIO, batch_size: int) -> int:
    """One JSON line of scores per text line on stdout; the number of lines that failed."""
    return run_pipeline(stream, batch_size, parse_scored_text, lm.score)


def lm_predict(lm, task: str, request: PredictRequest) -> dict:
    """The next words after --text, or its continuation; a warning names the words of --text
    that the vocabulary lacks."""
    from nvlm.report import warn

    if task == "next":
        result = lm.next_words(request.text, request.next_words or 5)
    else:
        result = lm.generate(
            request.text,
            request.generate or 20,
            temperature=request.temperature,
            top_k=request.top_k,
            seed=request.seed,
        )
    if result["unknown_words"]:
        warn(f"not in the vocabulary (read as <unk>): {', '.join(result['unknown_words'][:10])}")
    return result


def lm_lines(task: str, request: PredictRequest, result: dict) -> list[str]:
    """A language model's result for people: "word<TAB>probability" per next word, or --text
    followed by its continuation."""
    if task == "next":
        return [f"{item['word']}\t{item['probability']}" for item in result["next"]]
    return [f"{request.text} {result['continuation']}"]

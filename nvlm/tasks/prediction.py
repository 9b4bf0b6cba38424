"""`nvlm predict` below its options: what a request asks for, its inputs checked before a model
is loaded (so that a wrong path or a missing option fails at once), the JSONL line formats of
`--input`, question answering and the language-model tasks (next words, generation, scoring).
Every option given is checked against the task before a model is loaded: one that does not apply
is refused in one line (exit 2), never silently ignored (`predict_task`, `OPTIONS`).

    request = PredictRequest("runs/squad", question="Who?", context="Harry did.")
    predict_task(registry.get("bert"), "bert", request)          # "squad"
    answerer = load_answerer(registry.get("bert"), request)
    answer_one(answerer, request.question, request.context)    # {"answer": "Harry", ...}
"""

from __future__ import annotations

import dataclasses
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
    pair: str | None = None  # classify: the second text of a pair (with --text)
    top_k: int | None = None
    next_words: int | None = None
    generate: int | None = None
    temperature: float | None = None
    seed: int | None = None  # None: DEFAULT_SEED
    null_threshold: float | None = None
    beam_size: int | None = None
    layer: int | None = None
    pooled: bool = False  # the old spelling of pooling="pooler"
    pooling: str | None = None  # features: cls | mean | pooler (one vector per text)
    normalize: bool = False  # features: L2-normalise the pooled vector
    part: str | None = None  # features: the encoder of a model with several (ELECTRA)
    batch_size: int | None = None  # None: DEFAULT_BATCH
    # How the model runs (None: the run's setting, else the preset's, else the default).
    precision: str | None = None
    xla: bool | None = None
    preset: str | None = None
    sets: tuple[str, ...] = ()

    @classmethod
    def of_options(cls, options: dict, *, typed: set[str]) -> PredictRequest:
        """The request of `nvlm predict`'s keyword arguments; `typed`: those of "seed" and
        "batch_size" the user typed (their defaults are not requests: never refused)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(options) - names - _NOT_REQUEST_OPTIONS
        if unknown:  # an option added to the command and not here would be dropped silently
            raise TypeError(f"PredictRequest has no field for {sorted(unknown)}")
        values = {k: v for k, v in options.items() if k in names}
        for name in ("seed", "batch_size"):
            if name not in typed:
                values[name] = None
        values["sets"] = tuple(values.get("sets") or ())
        return cls(**values)

    def batch(self) -> int:
        """Inputs per forward pass: --batch-size, else DEFAULT_BATCH."""
        return DEFAULT_BATCH if self.batch_size is None else self.batch_size

    def load_options(self) -> dict:
        """The keyword arguments of `tasks.inference.load_model` (and of a plugin's
        `language_model`) that --precision, --xla, --preset and --set give."""
        flags = {"train.precision": self.precision, "train.xla": self.xla}
        return {
            "preset": self.preset,
            "sets": self.sets,
            "flags": {k: v for k, v in flags.items() if v is not None},
        }


DEFAULT_BATCH = 8
# `nvlm predict`'s arguments that are not part of the request (how it is run and shown).
_NOT_REQUEST_OPTIONS = {"ctx", "model", "verbose", "json_out"}
DEFAULT_SEED = 0


# -- which task, and which options apply to it (checked before a model is loaded) -----------------
# What `nvlm predict` does: question answering, features and classification (labels of texts
# and pairs: nvlm.tasks.classify.prediction) for encoders, next words, generation and scoring
# for language models. A plugin's other tasks (pretrain, mlm, lm) are tasks of
# `nvlm pretrain` and `nvlm eval`, not of predict.
ENCODER_TASKS = ("squad", "features", "classify")
LM_TASKS = ("next", "generate", "score")
# The tokens of each [MASK] from a masked-LM head (nvlm.tasks.fill_mask): for a plugin whose
# "mlm" model provides `masked_lm_logits` (BERT's pretraining head, ELECTRA's generator).
FILL_MASK = "fill-mask"

# option -> (PredictRequest field, {task it applies to: what it does there}). An option given
# to any other task is refused: ignoring it would answer another question than the one asked
# (`--input - --next 3` scored the lines; `--text T --next 3` on BERT printed features).
OPTIONS = {
    "--question": ("question", {"squad": "with --context"}),
    "--context": ("context", {"squad": "with --question"}),
    "--text": (
        "text",
        {"features": "", "classify": "", "next": "", "generate": "", "score": "", FILL_MASK: ""},
    ),
    "--pair": ("pair", {"classify": "the second text of a pair, with --text"}),
    "--input": ("input", {"squad": "", "features": "", "classify": "", "score": "", FILL_MASK: ""}),
    "--next": ("next_words", {"next": "the N most probable words after --text"}),
    "--generate": ("generate", {"generate": "continue --text by K words"}),
    "--top-k": (
        "top_k",
        {
            "squad": "the N best answers",
            "generate": "sample among the K most probable words",
            FILL_MASK: "the K most probable tokens per [MASK]",
        },
    ),
    "--temperature": ("temperature", {"generate": "sampling"}),
    "--seed": ("seed", {"generate": "sampling"}),
    "--null-threshold": ("null_threshold", {"squad": "SQuAD v2.0 'no answer'"}),
    "--beam-size": ("beam_size", {"squad": "a beam-search answer head"}),
    "--layer": ("layer", {"features": ""}),
    "--pooled": ("pooled", {"features": ""}),
    "--pooling": ("pooling", {"features": "one vector per text"}),
    "--normalize": ("normalize", {"features": "with --pooling"}),
    "--part": ("part", {"features": "ELECTRA's discriminator or generator"}),
    "--batch-size": (
        "batch_size",
        {
            "squad": "",
            "features": "with --input",
            "classify": "with --input",
            "score": "with --input",
            FILL_MASK: "with --input",
        },
    ),
}


def predict_tasks(plugin) -> tuple[str, ...]:
    """The tasks `nvlm predict` can do with `plugin`."""
    encoder = tuple(t for t in ENCODER_TASKS if t in plugin.tasks)
    if "mlm" in plugin.tasks and plugin.provides("masked_lm_logits"):
        encoder += (FILL_MASK,)
    return encoder + (LM_TASKS if plugin.provides("language_model") else ())


def _chosen_task(request: PredictRequest, lm: bool) -> tuple[str, str]:
    """The task asked for, and how it was chosen when --task was not given (for messages)."""
    if request.task is not None:
        return ("squad" if request.task == "qa" else request.task), ""
    if lm and request.input is not None:
        return "score", " (the default with --input)"
    if lm and request.generate is not None:
        return "generate", " (the default with --generate)"
    if request.text is not None:
        return ("next" if lm else "features"), " (the default with --text)"
    return ("next" if lm else "squad"), " (the default)"


def _check_task(model: str, task: str, tasks: tuple[str, ...], plugin_tasks) -> None:
    if task in tasks:
        return
    other = f"; {task!r} is a task of nvlm pretrain or eval" if task in plugin_tasks else ""
    raise UserError(
        f"model {model} cannot predict task {task!r} (tasks: {', '.join(tasks)}{other})"
    )


def predict_task(plugin, model: str, request: PredictRequest) -> str:
    """The task `request` asks of `plugin` (spelt `model` by the user), after each option given
    was checked against it: an option of another task, or of a --text where it needs --input,
    is refused with one line naming the combination and what the option is for."""
    tasks = predict_tasks(plugin)
    task, why = _chosen_task(request, lm=plugin.provides("language_model"))
    _check_task(model, task, tasks, plugin.tasks)
    where = f"--model {model} --task {task}{why}"
    for flag, (field, applies) in OPTIONS.items():
        value = getattr(request, field)
        if value is None or value is False or task in applies:  # not `in (None, False)`: 0 == False
            continue
        mine = [t for t in applies if t in tasks]
        uses = [f"--task {t}" + (f" ({applies[t]})" if applies[t] else "") for t in mine or applies]
        use = f"it is for {' or '.join(uses)}"
        if not mine:
            use += f", which --model {model} does not predict (tasks: {', '.join(tasks)})"
        raise UserError(f"{flag} does not apply to {where}: {use}")
    if request.batch_size is not None and task != "squad" and request.input is None:
        raise UserError(
            f"--batch-size does not apply to {where} with one --text: it is for --input FILE|- "
            "(lines per forward pass)"
        )
    if task in LM_TASKS:
        _check_lm_inputs(task, request)
    return task


def _check_lm_inputs(task: str, request: PredictRequest) -> None:
    """What a language-model task reads: --text (next, generate), --text or --input (score)."""
    text, source = request.text, request.input
    if task == "score" and (text is None) == (source is None):
        raise UserError(
            "--task score needs exactly one of --text TEXT or --input FILE|- (a text per line, "
            'or JSONL {"text"})'
        )
    if text is not None and not text.strip():
        raise UserError(
            f"--text is empty (pass the {'text to score' if task == 'score' else 'context'})"
        )
    if task != "score" and text is None:
        flag = "--next N" if task == "next" else "--generate K"
        raise UserError(f"--task {task} needs --text TEXT (the context), e.g. --text TEXT {flag}")
    check_text("--text", text)


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
    answering; refused when the plugin has no such task (its options: `predict_task`)."""
    task, _ = _chosen_task(request, lm=False)
    _check_task(model, task, tuple(t for t in ENCODER_TASKS if t in plugin.tasks), plugin.tasks)
    return task


def features_input(request: PredictRequest) -> BinaryIO | None:
    """The --input stream of --task features, or None for one --text."""
    if (request.text is None) == (request.input is None):
        raise UserError("--task features needs exactly one of --text TEXT or --input FILE|-")
    check_text("--text", request.text)
    return input_stream(request)


def load_features(plugin, model: str, request: PredictRequest):
    """The `nvlm.tasks.features.FeatureExtractor` of `request`: --layer, --pooling,
    --normalize and --part checked before the model is loaded, which runs at the run's
    precision and XLA setting unless --precision, --xla, --preset or --set say otherwise."""
    from nvlm.tasks.features import FeatureExtractor, FeatureOptions

    options = FeatureOptions(
        layer=request.layer,
        pooling=request.pooling,
        normalize=request.normalize,
        part=request.part,
        pooled=request.pooled,
    )
    return FeatureExtractor(
        plugin, request.init, options, model=model, load_options=request.load_options()
    )


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

    options = request.load_options()
    options["flags"].update(beam_size_flags(plugin, request.beam_size))
    cfg, net = load_model(plugin, request.init, "squad", stage="squad", **options)
    return Answerer(
        plugin,
        cfg,
        net,
        request.init,
        null_threshold=request.null_threshold,
        top_k=request.top_k or 1,
        window_batch=request.batch(),
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
def score_stream(lm, stream: BinaryIO, batch_size: int) -> int:
    """One JSON line of scores per text line on stdout; the number of lines that failed."""
    return run_pipeline(stream, batch_size, parse_scored_text, lm.score)


def score_one(lm, text: str) -> dict:
    """The scores of one --text: what `score_stream` prints for a file of that one line."""
    [scores] = lm.score([{"line": 1, "text": text}])
    return scores


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
            seed=DEFAULT_SEED if request.seed is None else request.seed,
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

"""Read and check the official SQuAD JSON (v1.1 and v2.0) into flat `SquadExample`s.

The file layout (both versions)::

    {"version": "1.1" | "v2.0",
     "data": [{"title": ..., "paragraphs": [{"context": ...,
               "qas": [{"id": ..., "question": ...,
                        "answers": [{"text": ..., "answer_start": ...}, ...],
                        "is_impossible": bool,                    # v2.0 only
                        "plausible_answers": [...]}]}]}]}         # v2.0, unanswerable only

Every problem a user can fix is reported as ONE `UserError` naming the file, the question id
(or the record's position when it has none) and what is wrong: a wrong `answer_start` would
otherwise train the model on the wrong span without any sign.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, NoReturn

from nvlm import outputs
from nvlm.errors import UserError
from nvlm.tasks.squad.dataset import SquadDataset
from nvlm.tasks.squad.example import SquadExample

VERSIONS = ("1.1", "2.0")


def read_squad(
    path: str | os.PathLike[str],
    version: str | None = None,
    *,
    require_answers: bool = True,
) -> SquadDataset:
    """Read and check a SQuAD file.

    Args:
        path: the JSON file.
        version: "1.1" or "2.0"; None detects it (2.0 when the file says so or any question
            carries `is_impossible`).
        require_answers: every answerable question must have at least one answer (training
            and scoring); False accepts questions without answers (prediction only).

    Raises:
        UserError: unreadable file, malformed JSON (with line and column), or a bad record
            (with its question id).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"SQuAD file not found: {path}", hint="see `nvlm data download squad`")
    raw = outputs.read_bytes(path)
    obj = outputs.parse_json(raw, path)
    return parse_squad(
        obj,
        version,
        source=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        require_answers=require_answers,
    )


def parse_squad(
    obj: Any,
    version: str | None = None,
    *,
    source: str = "<memory>",
    sha256: str = "",
    require_answers: bool = True,
) -> SquadDataset:
    """Check an already-decoded SQuAD object (see `read_squad`)."""
    if version is not None and version not in VERSIONS:
        raise UserError(f"unknown SQuAD version {version!r}", hint="use 1.1 or 2.0")
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise UserError(f"{source}: not a SQuAD file (expected an object with a 'data' list)")
    detected = _detect_version(obj)
    if version is None:
        version = detected
    elif version == "1.1" and detected == "2.0":
        # Reading a 2.0 file as 1.1 would turn unanswerable questions into errors further on.
        raise UserError(
            f"{source} is SQuAD v2.0 (it has is_impossible questions)", hint="use --version 2.0"
        )
    parser = _Parser(source, version, require_answers)
    for a, article in enumerate(obj["data"]):
        parser.article(a, article)
    if not parser.examples:
        raise UserError(f"{source} holds no questions")
    return SquadDataset(parser.examples, parser.contexts, version, source, sha256)


def _detect_version(obj: dict) -> str:
    if str(obj.get("version", "")).lstrip("v") == "2.0":
        return "2.0"
    for article in obj["data"]:
        for paragraph in _list(article, "paragraphs") if isinstance(article, dict) else ():
            for qa in _list(paragraph, "qas") if isinstance(paragraph, dict) else ():
                if isinstance(qa, dict) and "is_impossible" in qa:
                    return "2.0"
    return "1.1"


def _list(record: dict, key: str) -> list:
    value = record.get(key, [])
    return value if isinstance(value, list) else []


class _Parser:
    """Walks articles -> paragraphs -> questions, collecting examples or raising at the first
    bad record."""

    def __init__(self, source: str, version: str, require_answers: bool) -> None:
        self.source = source
        self.version = version
        self.require_answers = require_answers
        self.examples: list[SquadExample] = []
        self.contexts: list[str] = []
        self.seen: set[str] = set()

    def fail(self, where: str, problem: str, hint: str | None = None) -> NoReturn:
        raise UserError(f"{self.source}: {where}: {problem}", hint=hint)

    def article(self, a: int, article: Any) -> None:
        where = f"data[{a}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            self.fail(where, "expected an object with a 'paragraphs' list")
        for p, paragraph in enumerate(article["paragraphs"]):
            self.paragraph(f"{where}.paragraphs[{p}]", paragraph)

    def paragraph(self, where: str, paragraph: Any) -> None:
        if not isinstance(paragraph, dict):
            self.fail(where, "expected an object with 'context' and 'qas'")
        qas = paragraph.get("qas")
        if not isinstance(qas, list):
            self.fail(where, "'qas' must be a list of questions")
        context = paragraph.get("context")
        problem = _text_problem(context, "the context")
        if problem:
            # Name the questions: they are what a user searches the file for.
            ids = [str(qa.get("id")) for qa in qas if isinstance(qa, dict)]
            name = f"question {ids[0]!r} ({where})" if ids else where
            self.fail(name, problem)
        if not qas:
            return
        context_id = len(self.contexts)
        self.contexts.append(context)
        for q, qa in enumerate(qas):
            self.question(f"{where}.qas[{q}]", qa, context, context_id)

    def question(self, where: str, qa: Any, context: str, context_id: int) -> None:
        if not isinstance(qa, dict):
            self.fail(where, "expected a question object")
        qid = qa.get("id")
        if isinstance(qid, int) and not isinstance(qid, bool):
            qid = str(qid)
        if qid is None or qid == "":
            self.fail(where, "the question has no 'id'")
        if not isinstance(qid, str):
            self.fail(where, f"the question 'id' must be a string, not {_type_name(qid)}")
        name = f"question {qid!r}"
        if qid in self.seen:
            self.fail(name, "the id is used twice", hint="predictions are keyed by question id")
        self.seen.add(qid)
        question = qa.get("question")
        problem = _text_problem(question, "the question text")
        if problem:
            self.fail(name, problem)
        impossible = qa.get("is_impossible", False)
        if not isinstance(impossible, bool):
            self.fail(name, f"is_impossible must be true or false, not {impossible!r}")
        if impossible and self.version == "1.1":
            self.fail(name, "is_impossible questions need SQuAD v2.0", hint="use --version 2.0")
        answers = self.answers(name, qa.get("answers", []), context, "answers")
        if impossible and answers:
            self.fail(name, "is_impossible is true but the question has answers")
        if not impossible and not answers and self.require_answers:
            problem = "the question has no answers"
            hint = "mark it is_impossible (v2.0)" if self.version == "2.0" else None
            self.fail(name, problem, hint=hint)
        plausible = qa.get("plausible_answers", [])
        kept = tuple(
            (item["text"], item["answer_start"])
            for item in (plausible if isinstance(plausible, list) else [])
            if isinstance(item, dict)
            and isinstance(item.get("text"), str)
            and isinstance(item.get("answer_start"), int)
        )
        self.examples.append(
            SquadExample(qid, question, context, context_id, answers, impossible, kept)
        )

    def answers(
        self, name: str, answers: Any, context: str, key: str
    ) -> tuple[tuple[str, int], ...]:
        if not isinstance(answers, list):
            self.fail(name, f"'{key}' must be a list")
        out = []
        for k, answer in enumerate(answers):
            if not isinstance(answer, dict):
                self.fail(name, f"{key}[{k}] is not an object with 'text' and 'answer_start'")
            text, start = answer.get("text"), answer.get("answer_start")
            if text is not None and not isinstance(text, str):
                self.fail(name, f"{key}[{k}] 'text' must be a string, not {_type_name(text)}")
            if not text:
                self.fail(name, f"{key}[{k}] has an empty or missing 'text'")
            if not isinstance(start, int) or isinstance(start, bool) or start < 0:
                self.fail(name, f"{key}[{k}] needs a non-negative integer 'answer_start'")
            found = context[start : start + len(text)]
            if found != text:
                self.fail(
                    name,
                    f"{key}[{k}] {_clip(text)} is not at answer_start {start} "
                    f"(the context there reads {_clip(found)})",
                    hint="answer_start counts characters from 0",
                )
            out.append((text, start))
        return tuple(out)


def _text_problem(value: Any, what: str) -> str | None:
    """What is wrong with a context or question value, or None when it is usable text."""
    if value is None:
        return f"{what} is missing"
    if not isinstance(value, str):
        return f"{what} must be a string, not {_type_name(value)}"
    if not value.strip():
        return f"{what} is empty"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate escape such as "\ud800"
        return f"{what} holds an unpaired surrogate escape ({value[exc.start]!a}) at character {exc.start}"
    return None


def _type_name(value: Any) -> str:
    """The JSON type of a decoded value, as a user reads it in the file."""
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _clip(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")

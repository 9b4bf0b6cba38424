"""A synthetic SQuAD-format set about the made-up people of the demo corpus (our templates),
so that `make demo` can fine-tune and ask questions without downloading anything. Answers are
located by construction, so every `answer_start` is exact."""

from __future__ import annotations

import random
from pathlib import Path

from nvlm.data.demo_corpus import _a, _world
from nvlm.outputs import write_json


def _paragraph(rnd: random.Random, p) -> tuple[str, list[tuple[str, str]]]:
    """A biography paragraph and its (question, answer) pairs; answers are substrings."""
    facts = [
        (f"{p.name} works as {_a(p.trade)} in {p.town.name}.",
         [(f"Where does {p.first} work?", p.town.name), (f"What does {p.first} work as?", p.trade)]),
        (f"{p.first} loves to eat {p.dish}.", [(f"What does {p.first} love to eat?", p.dish)]),
        (f"{p.first} has {_a(p.pet)} named {p.pet_name}.",
         [(f"What is the name of the {p.pet} of {p.first}?", p.pet_name)]),
        (f"In the evening {p.first} plays the {p.instrument}.",
         [(f"Which instrument does {p.first} play?", p.instrument)]),
        (f"{p.first} is {p.age} years old.", [(f"How old is {p.first}?", str(p.age))]),
    ]  # fmt: skip
    rnd.shuffle(facts)
    return " ".join(s for s, _ in facts), [qa for _, qas in facts for qa in qas]


def demo_squad(people: int, seed: int, *, version: str = "1.1") -> dict:
    rnd = random.Random(seed)
    persons, _ = _world(rnd, people=people, towns=max(3, people // 10))
    paragraphs = []
    for i, p in enumerate(persons):
        context, qas = _paragraph(rnd, p)
        entries = []
        for j, (question, answer) in enumerate(qas):
            start = context.index(answer, context.index(p.first))
            entries.append(
                {
                    "id": f"demo-{seed}-{i}-{j}",
                    "question": question,
                    "answers": [{"text": answer, "answer_start": start}],
                }
            )
            if version == "2.0":
                entries[-1]["is_impossible"] = False
        if version == "2.0":  # ask about someone who is not in this paragraph
            other = persons[(i + 1) % len(persons)]
            entries.append(
                {
                    "id": f"demo-{seed}-{i}-none",
                    "question": f"How old is {other.first}?",
                    "answers": [],
                    "is_impossible": True,
                }
            )
        paragraphs.append({"context": context, "qas": entries})
    return {"version": version, "data": [{"title": "demo", "paragraphs": paragraphs}]}


def write_demo_squad(out: Path, people: int = 40, seed: int = 0, version: str = "1.1") -> dict:
    """Write out/squad-train.json and out/squad-dev.json (other people, same templates)."""
    out.mkdir(parents=True, exist_ok=True)
    train = demo_squad(people, seed, version=version)
    dev = demo_squad(max(4, people // 4), seed + 1, version=version)
    write_json(out / "squad-train.json", train)
    write_json(out / "squad-dev.json", dev)
    count = lambda d: sum(len(p["qas"]) for p in d["data"][0]["paragraphs"])  # noqa: E731
    return {
        "train": str(out / "squad-train.json"),
        "dev": str(out / "squad-dev.json"),
        "train_questions": count(train),
        "dev_questions": count(dev),
    }

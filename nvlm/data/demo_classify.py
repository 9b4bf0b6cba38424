"""A synthetic labelled set about the made-up world of the demo corpus (our templates), so that
`make demo TASK=classify` can fine-tune a classifier without downloading anything.

Each example is a short account of someone's market day: one or two plain facts from the world
(neutral), one remark and a closing verdict whose wording carries the label, `positive` or
`negative`. The cue words are the only signal, and the neutral facts (names, towns, dishes) are
shared by both classes, so a model must learn the words rather than the people; the dev set is
about other people (another seed), as the SQuAD demo set's is. Two cues rather than one: with one,
tiny models fine-tuned for a few hundred steps reached 100% on train but 80-92% on dev (they
leaned on the unfamiliar names), with two 98-100% (measured, `make demo TASK=classify`). The
classes differ by at most one example (train and dev).

    >>> rows = demo_classify(4, seed=0)
    >>> sorted(r["label"] for r in rows)
    ['negative', 'negative', 'positive', 'positive']
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from nvlm.data.demo_corpus import _a, _world
from nvlm.errors import UserError
from nvlm.outputs import write_text

LABELS = ("positive", "negative")

# Adjectives that fit every remark template below; none is in the demo corpus's templates, so the
# label cannot be read off a sentence the pretraining corpus also has.
_CUES = {
    "positive": ["wonderful", "lovely", "delightful", "excellent", "pleasant", "cheerful",
                 "splendid", "marvellous"],
    "negative": ["awful", "dreadful", "miserable", "terrible", "unpleasant", "gloomy",
                 "horrible", "disappointing"],
}  # fmt: skip


def _remark(rnd: random.Random, p, label: str) -> str:
    cue = rnd.choice(_CUES[label])
    town = p.town
    return rnd.choice([
        f"{p.first} said the {town.dish} at the market of {town.name} was {cue}.",
        f"The market by the {town.river} river was {cue} that {town.market_day}, said {p.first}.",
        f"{p.first} found the walk to {town.name} {cue}.",
        f"Meeting {p.sibling.first} at the market was {cue} for {p.first}.",
        f"{p.first} called the evening with the {p.instrument} {cue}.",
    ])  # fmt: skip


def _verdict(rnd: random.Random, p, label: str) -> str:
    cue = rnd.choice(_CUES[label])
    return rnd.choice(
        [f"All in all it was {_a(cue)} day.", f"{p.first} will remember that {cue} day."]
    )


def _facts(rnd: random.Random, p) -> list[str]:
    facts = [
        f"{p.name} is {_a(p.trade)} in {p.town.name}.",
        f"One {p.town.market_day} {p.first} went to the market with {p.pet_name} the {p.pet}.",
        f"{p.first} wore {_a(p.colour)} scarf.",
        f"{p.first} bought {p.dish} for {p.sibling.first}.",
    ]
    return rnd.sample(facts, rnd.randint(1, 2))


def demo_classify(examples: int, seed: int = 0) -> list[dict]:
    """`examples` rows `{"id", "text", "label"}`; labels alternate before the shuffle, so the
    two classes differ by at most one. Same (examples, seed) -> same rows."""
    if examples < 2:
        raise UserError(f"a labelled demo set needs at least 2 examples, not {examples}")
    rnd = random.Random(seed)
    people, _ = _world(rnd, people=max(8, examples // 4), towns=max(3, examples // 40))
    rows = []
    for i in range(examples):
        p = rnd.choice(people)
        label = LABELS[i % 2]
        sentences = _facts(rnd, p)
        sentences.insert(rnd.randint(0, len(sentences)), _remark(rnd, p, label))
        sentences.append(_verdict(rnd, p, label))
        rows.append({"text": " ".join(sentences), "label": label})
    rnd.shuffle(rows)
    return [{"id": f"demo-{seed}-{i}", **row} for i, row in enumerate(rows)]


def write_demo_classify(out: Path, examples: int = 1600, seed: int = 0) -> dict:
    """Write out/classify-train.jsonl (`examples` rows) and out/classify-dev.jsonl (a quarter as
    many, about other people: seed + 1), one JSON object a line."""
    out.mkdir(parents=True, exist_ok=True)
    sets = {
        "train": demo_classify(examples, seed),
        "dev": demo_classify(max(2, examples // 4), seed + 1),
    }
    summary = {}
    for split, rows in sets.items():
        path = out / f"classify-{split}.jsonl"
        write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        summary[f"classify_{split}"] = str(path)
        summary[f"classify_{split}_examples"] = len(rows)
    return summary

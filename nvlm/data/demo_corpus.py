"""A synthetic English-like corpus of our own: made-up people, towns and dishes.

Every sentence comes from templates in this file, filled from a small invented world (names are
built from syllables, so nothing is copied from real text). The world is fixed by the seed and
its facts recur across documents (a person's town, trade, favourite dish, pet, sibling; a town's
river and market day), so a tiny BERT has something learnable: masked facts and which sentence
follows which. Used by the tests and by `make demo` (`nvlm data demo-corpus`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from nvlm.errors import UserError
from nvlm.outputs import write_text

_ONSETS = [
    "b",
    "d",
    "f",
    "g",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "br",
    "dr",
    "st",
    "th",
]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ei", "ou"]
_CODAS = ["", "", "n", "r", "l", "s", "m", "th"]
_TOWN_ENDINGS = ["ford", "holm", "wick", "dale", "mere", "stead", "by", "ton"]
_TRADES = ["baker", "weaver", "pilot", "doctor", "teacher", "carpenter", "painter", "farmer",
           "sailor", "engineer", "librarian", "gardener", "potter", "fisher", "tailor", "singer"]  # fmt: skip
_PETS = ["cat", "dog", "parrot", "goat", "horse", "rabbit", "tortoise", "owl", "goose", "ferret"]
_COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "grey", "golden", "silver"]
_INSTRUMENTS = ["violin", "drum", "flute", "guitar", "harp", "piano", "trumpet", "cello"]
_DISH_STYLES = ["smoked", "spiced", "sweet", "roasted", "salted", "honeyed", "pickled", "baked"]
_DISH_BASES = ["plum dumplings", "barley bread", "bean soup", "apple pie", "fish stew",
               "onion tart", "rice cakes", "cheese pastries", "mushroom pie", "lentil broth"]  # fmt: skip
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_REGIONS = ["north", "south", "east", "west"]


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _word(rnd: random.Random, syllables: int) -> str:
    parts = [
        rnd.choice(_ONSETS) + rnd.choice(_VOWELS) + rnd.choice(_CODAS) for _ in range(syllables)
    ]
    return "".join(parts).capitalize()


@dataclass
class _Town:
    name: str
    river: str
    region: str
    dish: str
    market_day: str
    founded: int


@dataclass
class _Person:
    first: str
    last: str
    town: _Town
    trade: str
    dish: str
    pet: str
    pet_name: str
    colour: str
    instrument: str
    age: int
    sibling: _Person | None = None

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


def _unique(rnd: random.Random, make, count: int) -> list[str]:
    seen: set[str] = set()
    out = []
    while len(out) < count:
        word = make()
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out


def _world(rnd: random.Random, people: int, towns: int) -> tuple[list[_Person], list[_Town]]:
    town_names = _unique(rnd, lambda: _word(rnd, 1) + rnd.choice(_TOWN_ENDINGS), towns)
    rivers = _unique(rnd, lambda: _word(rnd, 2), towns)
    dish = lambda: f"{rnd.choice(_DISH_STYLES)} {rnd.choice(_DISH_BASES)}"  # noqa: E731
    town_list = [
        _Town(n, r, rnd.choice(_REGIONS), dish(), rnd.choice(_DAYS), rnd.randint(1100, 1900))
        for n, r in zip(town_names, rivers, strict=True)
    ]
    firsts = _unique(rnd, lambda: _word(rnd, 2), people)
    lasts = _unique(rnd, lambda: _word(rnd, rnd.choice((2, 3))), people)
    pet_names = _unique(rnd, lambda: _word(rnd, 2), people)
    person_list = [
        _Person(f, last, rnd.choice(town_list), rnd.choice(_TRADES), dish(), rnd.choice(_PETS), p,
                rnd.choice(_COLOURS), rnd.choice(_INSTRUMENTS), rnd.randint(19, 88))
        for f, last, p in zip(firsts, lasts, pet_names, strict=True)
    ]  # fmt: skip
    for person in person_list:
        person.sibling = rnd.choice([q for q in person_list if q is not person])
    return person_list, town_list


def _biography(rnd: random.Random, p: _Person) -> list[str]:
    intro = rnd.choice([
        f"{p.name} is {_a(p.trade)} who lives in {p.town.name}.",
        f"{p.name} works as {_a(p.trade)} in the town of {p.town.name}.",
        f"In {p.town.name} there lives {_a(p.trade)} called {p.name}.",
    ])  # fmt: skip
    facts = [
        rnd.choice([f"{p.first} is {p.age} years old.", f"{p.first} turned {p.age} this year."]),
        rnd.choice([f"{p.first} loves to eat {p.dish}.", f"The favourite dish of {p.first} is {p.dish}."]),
        rnd.choice([f"{p.first} has {_a(p.pet)} named {p.pet_name}.",
                    f"{p.pet_name} the {p.pet} lives with {p.first}."]),
        rnd.choice([f"{p.first} likes the colour {p.colour}.", f"Most of the clothes of {p.first} are {p.colour}."]),
        rnd.choice([f"In the evening {p.first} plays the {p.instrument}.",
                    f"{p.first} has played the {p.instrument} since childhood."]),
        f"{p.first} is the sibling of {p.sibling.name}, who lives in {p.sibling.town.name}.",
        f"Every {p.town.market_day} {p.first} goes to the market by the {p.town.river} river.",
    ]  # fmt: skip
    rnd.shuffle(facts)
    return [intro, *facts[: rnd.randint(3, len(facts))]]


def _town_page(rnd: random.Random, t: _Town, people: list[_Person]) -> list[str]:
    residents = [p for p in people if p.town is t]
    lines = [
        f"{t.name} is a town in the {t.region} on the {t.river} river.",
        f"{t.name} was founded in {t.founded}.",
        f"The market of {t.name} opens every {t.market_day}.",
        f"People come to {t.name} for its {t.dish}.",
    ]
    for p in rnd.sample(residents, min(len(residents), rnd.randint(1, 4))):
        lines.append(f"{p.name}, {_a(p.trade)}, lives in {t.name}.")
    return lines


def _story(rnd: random.Random, p: _Person) -> list[str]:
    return [
        f"One {p.town.market_day} morning {p.name} walked to the market of {p.town.name}.",
        f"{p.pet_name} the {p.pet} came along.",
        f"At the market {p.first} bought {p.dish} and {_a(p.colour)} scarf.",
        f"On the way home {p.first} met {p.sibling.first}, who had come from {p.sibling.town.name}.",
        f"That night {p.first} played the {p.instrument} until late.",
    ]


def demo_documents(documents: int, seed: int = 0) -> list[list[str]]:
    """The corpus as documents (lists of sentences); same (documents, seed) -> same text."""
    rnd = random.Random(seed)
    people, towns = _world(
        rnd, people=max(8, min(400, documents // 3)), towns=max(3, min(40, documents // 20))
    )
    out = []
    for _ in range(documents):
        kind = rnd.random()
        if kind < 0.6:
            out.append(_biography(rnd, rnd.choice(people)))
        elif kind < 0.8:
            out.append(_town_page(rnd, rnd.choice(towns), people))
        else:
            out.append(_story(rnd, rnd.choice(people)))
    return out


def write_demo_corpus(
    out: Path, documents: int = 1000, seed: int = 0, name: str = "corpus.txt"
) -> dict:
    """Write `out/<name>`: one sentence per line, a blank line between documents."""
    if documents < 1:
        raise UserError(f"--documents must be at least 1, not {documents}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)
    docs = demo_documents(documents, seed)
    text = "\n\n".join("\n".join(doc) for doc in docs) + "\n"
    path = out / name
    write_text(path, text)
    sentences = sum(len(d) for d in docs)
    return {
        "path": str(path),
        "documents": len(docs),
        "sentences": sentences,
        "words": len(text.split()),
        "seed": seed,
    }

"""The axes of a benchmark sweep as a user types them (`--precision fp32,bf16`,
`--batch-sizes 8,16`, `--gpus 1,2,4`): comma-separated lists, validated before anything runs."""

from __future__ import annotations

from collections.abc import Callable

from nvlm.errors import UserError
from nvlm.presets import PRECISIONS  # the config's: fp32, tf32, amp, bf16


def parse_list(
    text: str | None, option: str, cast: Callable, allowed: tuple[str, ...] | None = None
) -> tuple | None:
    """The distinct values of `text` in order (None if not given): names out of `allowed`, or
    whole numbers >= 1 when `allowed` is None; anything else is one line naming `option`."""
    if text is None:
        return None
    items = [t.strip().lower() for t in text.split(",") if t.strip()]
    try:
        values = tuple(dict.fromkeys(cast(t) for t in items))
    except ValueError:
        values = ()
    if not values or (allowed is None and min(values) < 1):
        raise UserError(f"{option} {text!r}: give comma-separated whole numbers >= 1, e.g. 1,8")
    if allowed is not None:
        bad = [v for v in values if v not in allowed]
        if bad:
            raise UserError(
                f"{option} {text!r}: {bad[0]!r} is not one of {', '.join(allowed)} "
                "(comma-separated)"
            )
    return values


def precisions(text: str | None) -> tuple:
    """--precision: the precisions to sweep, or (None,) for the preset's."""
    return parse_list(text, "--precision", str, PRECISIONS) or (None,)


def whole_numbers(text: str | None, option: str) -> tuple | None:
    """--batch-sizes, --gpus: whole numbers >= 1 (None if not given)."""
    return parse_list(text, option, int)

"""Model plugins and their discovery.

Built-in models register through the same entry-point group an outside package would use
(`[project.entry-points."nvlm.models"]` in pyproject.toml), so a third-party model is a
`pip install` away and is treated exactly like BERT.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

from nvlm.errors import UserError

GROUP = "nvlm.models"


@runtime_checkable
class ModelPlugin(Protocol):
    name: ClassVar[str]  # "bert", "electra", "transformer-xl"
    config_cls: ClassVar[type]  # frozen dataclass of the model's hyper-parameters
    tasks: ClassVar[tuple[str, ...]]  # e.g. ("pretrain", "squad", "features")

    def build(self, cfg: Any, task: str) -> Any: ...

    def flops_per_token(self, cfg: Any, seq_len: int) -> float: ...


_PLUGINS: dict[str, Any] | None = None


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def plugins() -> dict[str, Any]:
    """All installed model plugins by name (loaded once)."""
    global _PLUGINS
    if _PLUGINS is None:
        found: dict[str, Any] = {}
        for ep in entry_points(group=GROUP):
            cls = ep.load()
            found[_canonical(cls.name)] = cls
        _PLUGINS = found
    return _PLUGINS


def get(name: str) -> Any:
    """The plugin instance for a model name (`transformer_xl` == `transformer-xl`)."""
    available = plugins()
    key = _canonical(name)
    if key not in available:
        known = ", ".join(sorted(available)) or "none installed"
        raise UserError(f"unknown model '{name}' (available: {known})")
    return available[key]()


def names() -> list[str]:
    return sorted(plugins())

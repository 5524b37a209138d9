"""Configurations for `--compare`: presets and key=value settings changes, and their labels."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from rag.config import Settings
from rag.errors import ConfigError

# Named configurations for --compare; key=value pairs may follow them ("hybrid,k=3").
PRESETS: dict[str, dict[str, Any]] = {
    "dense": {"retrieval.hybrid": False, "retrieval.mmr": False},
    "hybrid": {"retrieval.hybrid": True, "retrieval.mmr": False},
    "mmr": {"retrieval.mmr": True},
    "extractive": {"answer.backend": "extractive"},
    "local": {"answer.backend": "local"},
    "judge": {"local.judge": "on"},
    "nojudge": {"local.judge": "off"},
    "openai": {"answer.backend": "openai"},
    "ollama": {"answer.backend": "ollama"},
}
# Short keys accepted in configurations; any dotted settings key (retrieval.rrf_k) works too.
ALIASES = {
    "k": "retrieval.top_k", "top_k": "retrieval.top_k", "hybrid": "retrieval.hybrid",
    "mmr": "retrieval.mmr", "mmr_lambda": "retrieval.mmr_lambda", "candidates": "retrieval.candidates",
    "rrf_k": "retrieval.rrf_k", "min_relevance": "retrieval.min_relevance",
    "backend": "answer.backend", "model": "answer.model", "base_url": "answer.base_url",
    "temperature": "answer.temperature", "max_tokens": "answer.max_tokens",
    "max_sentences": "answer.max_sentences", "support_threshold": "answer.support_threshold",
    "judge": "local.judge", "chunk_tokens": "chunking.chunk_tokens", "overlap_tokens": "chunking.overlap_tokens",
}


def parse_config(spec: str) -> dict[str, Any]:
    """Settings changes named by one --compare configuration.

    A configuration is a comma-separated list of presets (``dense``, ``hybrid``, ``mmr``,
    ``extractive``, ``openai``, ``ollama``) and ``key=value`` pairs, where a key is a short name
    from ``ALIASES`` (``k``, ``hybrid``, ``backend`` ...) or a dotted settings key
    (``retrieval.rrf_k``). Later items win: ``hybrid,k=3``, ``backend=openai,model=smol``.

    Raises:
        ConfigError: an unknown preset or key, or an empty configuration.
    """
    changes: dict[str, Any] = {}
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"Empty --compare configuration {spec!r}; use e.g. dense, hybrid or k=3.")
    for part in parts:
        if "=" not in part:
            if part.lower() not in PRESETS:
                raise ConfigError(
                    f"Unknown configuration {part!r} in {spec!r}; use a preset ({', '.join(PRESETS)}) "
                    "or key=value such as k=3, hybrid=false, backend=openai.")
            changes.update(PRESETS[part.lower()])
            continue
        key, _, raw = part.partition("=")
        changes[_settings_key(key.strip(), spec)] = _value(raw.strip())
    return changes


def configure(settings: Settings, spec: str) -> Settings:
    """``settings`` with one --compare configuration applied."""
    return settings.with_updates(**parse_config(spec))


def describe(settings: Settings) -> str:
    """A short label for a configuration: backend, k, dense/hybrid, mmr."""
    r = settings.retrieval
    return f"{settings.answer.backend} k={r.top_k} {'hybrid' if r.hybrid else 'dense'}{' mmr' if r.mmr else ''}"


def _settings_key(key: str, spec: str) -> str:
    dotted = ALIASES.get(key.lower(), key)
    section, _, leaf = dotted.partition(".")
    fields = Settings.model_fields
    if not leaf:
        if section in fields and not _is_section(fields[section].annotation):
            return section
    elif section in fields and _is_section(fields[section].annotation):
        annotation = fields[section].annotation
        if isinstance(annotation, type) and leaf in annotation.model_fields:
            return dotted
    raise ConfigError(
        f"Unknown setting {key!r} in --compare {spec!r}; use {', '.join(sorted(ALIASES))} "
        "or a dotted settings key such as retrieval.rrf_k.")


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in {"true", "yes", "on"}:
        return True
    if lowered in {"false", "no", "off"}:
        return False
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw

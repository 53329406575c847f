# SPDX-License-Identifier: Apache-2.0
"""Load a YAML file into a pydantic model, with errors naming the file, the line and the field.

Shared by every configuration file of the project (card profiles here, SAM key files in ``sam``,
settings and fare rules in ``validator``): this is the lowest layer that reads configuration.
Error messages are rebuilt from field names and pydantic's messages only, never from the input,
because the input may be key material.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file is missing, unreadable, not YAML, or not what its schema says."""

    what = "configuration"

    def __init__(
        self,
        path: Path | str,
        message: str,
        line: int | None = None,
        problems: list[tuple[int | None, str]] | None = None,
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = message
        self.problems = problems if problems is not None else [(line, message)]
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{self.what} {where}: {message}")

    def details(self) -> list[str]:
        """Every problem found, one 'file:line: field: reason' line each."""
        return [
            f"{self.path}:{line}: {message}" if line is not None else f"{self.path}: {message}"
            for line, message in self.problems
        ]


def load_model(
    path: str | Path,
    model: type[ModelT],
    *,
    scalars_as_text: bool = False,
    error: type[ConfigError] = ConfigError,
) -> ModelT:
    """Parse ``path`` as YAML and validate it with ``model``; raise ``error`` on any problem.

    With ``scalars_as_text`` every scalar reaches the model as a string, so that ``kif: 21``
    stays the hex text "21" instead of becoming the integer 21.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(path, f"cannot read: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise error(path, "not UTF-8 text") from None
    loader_class = yaml.BaseLoader if scalars_as_text else yaml.SafeLoader
    try:
        loader = loader_class(text)
    except yaml.reader.ReaderError as exc:  # a control character in the text
        raise error(path, f"YAML syntax: {exc.reason} (character {exc.position})") from None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise error(path, f"YAML syntax: {exc.problem or 'invalid YAML'}", line) from None
    except yaml.YAMLError as exc:
        reason = getattr(exc, "reason", None) or "invalid YAML"
        raise error(path, f"YAML syntax: {reason}") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(path, "the document must be a mapping", 1)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        found = [
            (_line_of(node, tuple(e["loc"])), f"{_field(tuple(e['loc']))}: {e['msg']}")
            for e in errors
        ]
        line, message = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise error(path, f"{message}{more}", line, found) from None


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _line_of(node: Any, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its deepest existing parent)."""
    if node is None:
        return None
    line: int = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if str(key.value) == str(part):
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                child = node.value[part]
                line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line

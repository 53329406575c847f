# SPDX-License-Identifier: Apache-2.0
"""Load a YAML file into a pydantic model, with errors naming the file, the line and the field.

Shared by every configuration file of the project (card profiles here, SAM key files in ``sam``,
settings and fare rules in ``validator``): this is the lowest layer that reads configuration.
Error messages are rebuilt from field names and pydantic's messages only, never from the input,
because the input may be key material.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)
MAX_CONFIG_BYTES = 1024 * 1024  # no configuration file of the project comes near 1 MiB


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


class ValueAt(ValueError):
    """A validator's refusal of one part of the value it checks: ``at`` is that part's path
    below the validated field (``(3,)`` for the fourth product of ``products``), so that the
    error names that part's line, not the field's."""

    def __init__(self, message: str, at: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.at = at


def _located(error: Any) -> tuple[Any, ...]:
    """An error's location, with the part a ``ValueAt`` names."""
    loc = tuple(error["loc"])
    raised = error.get("ctx", {}).get("error")
    return loc + raised.at if isinstance(raised, ValueAt) else loc


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
        text = read_config_text(path).decode("utf-8")
    except UnicodeDecodeError:
        raise error(path, "not UTF-8 text") from None
    except ConfigError as exc:
        raise error(path, exc.problem) from None
    loader_class = yaml.BaseLoader if scalars_as_text else yaml.SafeLoader
    try:
        loader = loader_class(text)
    except yaml.reader.ReaderError as exc:  # a control character in the text
        raise error(path, f"YAML syntax: {exc.reason} (character {exc.position})") from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_duplicate_keys(node, path, error, loader)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise error(path, f"YAML syntax: {exc.problem or 'invalid YAML'}", line) from None
    except yaml.YAMLError as exc:
        reason = getattr(exc, "reason", None) or "invalid YAML"
        raise error(path, f"YAML syntax: {reason}") from None
    except RecursionError:  # PyYAML composes recursively: [[[[... thousands deep
        raise error(path, "YAML nested too deeply: not a configuration file") from None
    except ConfigError:  # a duplicate key, already phrased
        raise
    except ValueError:  # from int() or date() inside the constructor; its text may quote input
        raise error(
            path, "a value cannot be converted (an integer over 4300 digits, or no such date)"
        ) from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(path, "the document must be a mapping", 1)
    try:
        return model.model_validate(data)
    except RecursionError:
        raise error(path, "YAML nested too deeply: not a configuration file") from None
    except ValidationError as exc:
        # The context is read for a ValueAt's location only; it is never printed (it may
        # quote the input).
        errors = exc.errors(include_url=False, include_input=False, include_context=True)
        found = [
            (_line_of(node, _located(e)), f"{_field(_located(e))}: {e['msg']}") for e in errors
        ]
        line, message = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise error(path, f"{message}{more}", line, found) from None


def read_config_text(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a configuration file: a regular file of at most ``limit`` bytes.

    Checked before anything is parsed, so that a 200 MB file, a FIFO or a link to /dev/zero
    costs nothing (issue 15.20); ConfigError names the file and the reason.
    """
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(path, "not a regular file")
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(path, f"cannot read: {exc.strerror or type(exc).__name__}") from None
    if len(data) > limit:
        raise ConfigError(path, f"larger than {limit // 1024} KiB: not a configuration file")
    return data


def _refuse_duplicate_keys(
    node: yaml.Node, path: Path, error: type[ConfigError], loader: yaml.BaseLoader | yaml.SafeLoader
) -> None:
    """Refuse a mapping key written twice (YAML would keep the last one silently; issue 15.7).

    Keys are compared as the text of their scalar, so that ``1`` and ``'1'`` (one key once the
    model coerces it) collide, and as the value the loader resolves the text to, so that ``1``,
    ``01`` and ``0x1`` (or ``true`` and ``yes``) collide too. Iterative: a deeply nested file
    cannot exhaust the stack.
    """
    pending = [node]
    seen_nodes: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen_nodes:  # an alias points back at a node already checked
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            first: dict[tuple[str, object], tuple[int, str]] = {}
            for key, value in current.value:
                pending.append(value)
                if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                    continue
                line = key.start_mark.line + 1
                identities = (("text", key.value), ("value", _resolved(loader, key.value)))
                clash = next((first[i] for i in identities if i in first), None)
                if clash is not None:
                    first_line, first_text = clash
                    written = f" as {_shown(first_text)!r}" if first_text != key.value else ""
                    raise error(
                        path,
                        f"duplicate key {_shown(key.value)!r} (first at line {first_line}"
                        f"{written}, again at line {line}): remove one of them",
                        line,
                    )
                for identity in identities:
                    first[identity] = (line, key.value)
        elif isinstance(current, yaml.SequenceNode):
            pending.extend(current.value)


def _resolved(loader: yaml.BaseLoader | yaml.SafeLoader, text: str) -> object:
    """What ``loader`` makes of ``text`` written as a plain key: 1 for ``01`` and ``'1'`` alike.

    Quoted keys are resolved as if plain on purpose: the models coerce '01' to the zone 1. A text
    the loader cannot construct (an invalid date, a 5000-digit integer) is compared as text only.
    """
    # PyYAML's stubs leave resolve() untyped; it returns the tag (a str) for a scalar.
    tag: str = loader.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    try:
        value = loader.construct_object(yaml.ScalarNode(tag, text))
        hash(value)
    except (yaml.YAMLError, ValueError, TypeError):
        return text
    return value


def _shown(text: str) -> str:
    """A key as named in a message: at most 40 characters."""
    return text if len(text) <= 40 else text[:37] + "..."


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


def line_of(path: Path, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the node at ``loc`` in the YAML file ``path``, for an error found
    after loading (a reference that does not match another file's); None if unreadable."""
    try:
        node = yaml.compose(read_config_text(path).decode("utf-8"), Loader=yaml.SafeLoader)
    except (ConfigError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None
    return _line_of(node, loc) if loc else None

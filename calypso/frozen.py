# SPDX-License-Identifier: Apache-2.0
"""Frozen dataclasses built at the cost of a plain class: replay builds millions of them.

Here, below the card layouts and the ticketing model, so that both use it.

A frozen dataclass sets each field through ``object.__setattr__`` in its generated
``__init__``, about twice the cost of setting its slots directly; replay builds a dozen model
objects per tap (titles, validations, the card state, the decision). ``fast_init`` gives a
frozen, slotted dataclass an ``__init__`` with the same signature and defaults that sets each
slot through its descriptor. Everything else stays the dataclass's own: equality, hashing,
``repr``, ``replace``, and ``FrozenInstanceError`` on assignment after construction.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def fast_init(cls: type[T]) -> type[T]:
    """Replace the ``__init__`` of a frozen, slotted dataclass by one that sets slots directly.

    Refused (TypeError) for a class it would change the meaning of: not a frozen, slotted
    dataclass, a ``__post_init__``, a field with a default factory, a keyword-only or a
    non-init field.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: fast_init is for frozen, slotted dataclasses")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: has __post_init__")
    names: list[str] = []
    arguments: list[str] = []
    namespace: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.default_factory is not dataclasses.MISSING or field.kw_only or not field.init:
            raise TypeError(f"{cls.__name__}.{field.name}: default factory, kw_only or no init")
        names.append(field.name)
        namespace[f"_set_{field.name}"] = getattr(cls, field.name).__set__
        if field.default is dataclasses.MISSING:
            arguments.append(field.name)
        else:
            namespace[f"_default_{field.name}"] = field.default
            arguments.append(f"{field.name}=_default_{field.name}")
    body = "".join(f"    _set_{name}(self, {name})\n" for name in names) or "    pass\n"
    source = f"def __init__(self, {', '.join(arguments)}):\n{body}"
    exec(source, namespace)  # noqa: S102 - generated from the field names, as dataclasses does
    init = namespace["__init__"]
    init.__module__ = cls.__module__
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.fast_init = True
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    cls.__init__ = init  # type: ignore[method-assign]
    return cls

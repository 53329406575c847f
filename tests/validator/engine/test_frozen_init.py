# SPDX-License-Identifier: Apache-2.0
"""fast_init: frozen dataclasses built faster, with exactly the dataclass's own behaviour."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect

import pytest

from calypso.frozen import fast_init
from calypso.layouts import demo as demo_records
from calypso.layouts import intercode as intercode_records
from validator.engine.fares.early import Decision, Reason, TapContext, Verdict
from validator.engine.ticketing import model

FAST = (
    demo_records.Environment,
    demo_records.Event,
    demo_records.Contract,
    intercode_records.FileEntry,
    intercode_records.IntercodeEnvironment,
    intercode_records.BestContract,
    intercode_records.IntercodeContract,
    intercode_records.IntercodeEvent,
    model.Counter,
    model.Title,
    model.Validation,
    model.CardEnvironment,
    model.Debit,
    model.CardState,
    TapContext,
    Decision,
)


@pytest.mark.parametrize("cls", FAST, ids=lambda cls: cls.__name__)
def test_model_classes_build_as_their_dataclass_would(cls: type) -> None:
    """Each model class has the fast __init__, with the dataclass's signature and defaults."""
    assert getattr(cls.__init__, "fast_init", False)
    reference = dataclasses.dataclass(frozen=True, slots=True)(
        type(cls.__name__, (), {"__annotations__": dict(cls.__annotations__), **_defaults(cls)})
    )
    fast = inspect.signature(cls.__init__).parameters
    slow = inspect.signature(reference.__init__).parameters
    assert [(p.name, p.default) for p in fast.values()] == [
        (p.name, p.default) for p in slow.values()
    ]


def _defaults(cls: type) -> dict[str, object]:
    return {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }


def test_built_objects_equal_and_stay_frozen() -> None:
    """Objects built by position, keyword and default are equal to the same values; frozen."""
    when = dt.datetime(2026, 3, 2, 8, 0)
    by_position = model.Validation(when, 101, 2, model.Transition.ENTRY)
    by_keyword = model.Validation(when=when, location=101, title=2)
    assert by_position == by_keyword and hash(by_position) == hash(by_keyword)
    assert (by_keyword.ok, by_keyword.network, by_keyword.format_error) == (True, None, None)
    assert dataclasses.replace(by_keyword, location=102).location == 102
    with pytest.raises(dataclasses.FrozenInstanceError):
        by_keyword.location = 5  # type: ignore[misc]
    decision = Decision(Verdict.DENY, Reason.EMPTY_CARD, "clean card")
    assert decision.retire == () and decision.debit is None
    assert repr(TapContext(when, 101)) == f"TapContext(now={when!r}, location_id=101)"
    with pytest.raises(TypeError):
        model.Title(1)  # type: ignore[call-arg]


def test_refuses_what_it_would_change() -> None:
    """A class with __post_init__, a default factory or no freezing is refused."""

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        items: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(slots=True)
    class Thawed:
        value: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            pass

    for cls in (Factory, Thawed, Checked):
        with pytest.raises(TypeError):
            fast_init(cls)

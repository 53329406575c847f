# SPDX-License-Identifier: Apache-2.0
"""FareRules.product keeps its answers, and never gives a kept one for other products."""

from __future__ import annotations

import pickle

from conftest import CONFIG

from validator.engine.fares.decide import FareRules
from yamlconfig import load_model


def _rules() -> FareRules:
    return load_model(CONFIG / "fares.yaml", FareRules)


def test_kept_answers_follow_a_model_copy() -> None:
    """A copy with other products or another network answers for its own, not the original's."""
    rules = _rules()
    carnet = rules.product(2)
    assert carnet is not None and rules.product(2) is carnet
    assert rules.model_copy(update={"products": []}).product(2) is None
    other = rules.model_copy(update={"network": "elsewhere"})
    assert other.product(2) is carnet  # sold on any network
    assert other.product(0x5001, "250901") == rules.product(0x5001, "250901")
    assert rules.product(99) is None and rules.product(2) is carnet


def test_kept_answers_change_no_comparison() -> None:
    """Rules that answered compare equal to fresh ones, dump the same, and pickle."""
    used, fresh = _rules(), _rules()
    used.product(2)
    used.product(3, "250502")
    assert used == fresh and used.model_dump() == fresh.model_dump()
    copy = pickle.loads(pickle.dumps(used))  # noqa: S301 - our own bytes, as --jobs sends them
    assert copy == fresh and copy.product(2) == fresh.product(2)

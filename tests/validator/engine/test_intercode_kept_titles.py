# SPDX-License-Identifier: Apache-2.0
"""The Intercode layout's kept titles give what contract_titles gives, for the same inputs."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import yaml

from calypso.layouts.intercode import (
    SFI_CONTRACT_LIST,
    SFI_CONTRACTS,
    SFI_ENVIRONMENT,
    BestContract,
    IntercodeContract,
    IntercodeEnvironment,
    decode_contract_list,
)
from validator.app.settings import load_settings
from validator.engine.fares.decide import FareRules
from validator.engine.layouts.intercode import KeptTitles, listed_records
from validator.engine.layouts.intercode_titles import (
    contract_titles,
    environment,
    listed_contracts,
)
from validator.engine.ticketing.model import CardEnvironment
from yamlconfig import load_model

CONFIG = Path(__file__).resolve().parents[3] / "config"
Inputs = tuple[dict[int, BestContract], dict[int, IntercodeContract], CardEnvironment]


def _records(card: str) -> dict[int, list[bytes]]:
    doc = yaml.safe_load((CONFIG / "cards" / card).read_text())
    return {
        f["sfi"]: [bytes.fromhex(h).ljust(29, b"\x00") for h in f["content"]]
        for f in doc["files"]
        if "content" in f
    }


@pytest.fixture(scope="module")
def rules() -> FareRules:
    settings = load_settings(CONFIG)
    return load_model(CONFIG / settings.fares, FareRules)


@pytest.fixture(params=["intercode.yaml", "oura.yaml"])
def inputs(request: pytest.FixtureRequest) -> Inputs:
    """Entries, contracts and environment of a shipped Intercode card."""
    files = _records(request.param)
    entries = listed_contracts(decode_contract_list(files[SFI_CONTRACT_LIST][0]))
    by_number = dict(enumerate(files[SFI_CONTRACTS], start=1))
    contracts = listed_records(entries, {SFI_CONTRACTS: by_number}, IntercodeContract.decode)
    env = environment(IntercodeEnvironment.decode(files[SFI_ENVIRONMENT][0]))
    return entries, contracts, env


class TestKeptTitles:
    """Kept by entries, contract identity, environment and rules identity."""

    def test_same_as_contract_titles_and_kept(self, inputs: Inputs, rules: FareRules) -> None:
        """The first call computes, the second finds it: both equal contract_titles' answer."""
        entries, contracts, env = inputs
        kept = KeptTitles(8)
        want = contract_titles(entries, contracts, env, rules)
        assert want[0], "the shipped card has titles"
        assert kept(entries, contracts, env, rules) == want
        assert kept(entries, contracts, env, rules) == want
        assert (kept.hits, kept.misses) == (1, 1)

    def test_other_inputs_are_computed_again(self, inputs: Inputs, rules: FareRules) -> None:
        """Another environment, other rules, or an equal contract that is another object: a
        miss, each with contract_titles' answer."""
        entries, contracts, env = inputs
        kept = KeptTitles(8)
        kept(entries, contracts, env, rules)
        later = dataclasses.replace(env, valid_until=dt.date(2040, 1, 1))
        assert kept(entries, contracts, later, rules) == contract_titles(
            entries, contracts, later, rules
        )
        assert kept(entries, contracts, env, None) == contract_titles(entries, contracts, env, None)
        copies = {p: dataclasses.replace(c) for p, c in contracts.items()}
        assert kept(entries, copies, env, rules) == contract_titles(entries, copies, env, rules)
        assert (kept.hits, kept.misses) == (0, 4)

    def test_keeps_at_most_size(self, inputs: Inputs, rules: FareRules) -> None:
        """The oldest result goes first once ``size`` are kept; size 0 keeps none."""
        entries, contracts, env = inputs
        kept = KeptTitles(2)
        envs = [dataclasses.replace(env, holder_profile=n) for n in range(3)]
        for each in envs:
            kept(entries, contracts, each, rules)
        kept(entries, contracts, envs[2], rules)
        kept(entries, contracts, envs[0], rules)
        assert (kept.hits, kept.misses) == (1, 4)
        none = KeptTitles(0)
        none(entries, contracts, env, rules)
        none(entries, contracts, env, rules)
        assert (none.hits, none.misses) == (0, 2)

    def test_results_are_fresh_containers(self, inputs: Inputs, rules: FareRules) -> None:
        """A caller that changes the list or dict it got does not change what is kept."""
        entries, contracts, env = inputs
        kept = KeptTitles(8)
        titles, readings = kept(entries, contracts, env, rules)
        titles.clear()
        readings.clear()
        assert kept(entries, contracts, env, rules) == contract_titles(
            entries, contracts, env, rules
        )

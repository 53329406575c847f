# SPDX-License-Identifier: Apache-2.0
"""The pure fare decision, one rule at a time, on the ticketing model alone."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import pytest
from conftest import CONFIG

from validator.engine.fares.decide import (
    CardState,
    FareRules,
    Reason,
    TapContext,
    Verdict,
    decide,
)
from validator.engine.ticketing.model import (
    CardEnvironment,
    Counter,
    CounterUnit,
    Title,
    TitleKind,
    TitleStatus,
    Transition,
    Validation,
)
from yamlconfig import ConfigError, load_model

NOW = dt.datetime(2026, 3, 2, 8, 0)
HERE = 101
SERIAL = bytes.fromhex("00000000C0FFEE02")
ENV = CardEnvironment(dt.date(2030, 1, 1))
OLD = dt.datetime(2026, 3, 1, 18, 0)
SEASON = Title(0, 1, kind=TitleKind.SEASON_PASS, valid_until=dt.date(2026, 12, 31))
CARNET = Title(0, 2, kind=TitleKind.TRIPS, valid_until=dt.date(2029, 12, 31))
EXPIRED = Title(0, 1, kind=TitleKind.SEASON_PASS, valid_until=dt.date(2024, 12, 31))
PURSE = Title(0, 3, kind=TitleKind.STORED_VALUE, valid_until=dt.date(2029, 12, 31))


def at(pointer: int, title: Title, rank: int = 1) -> Title:
    """``title`` kept at ``pointer`` on the card, with the card's rank ``rank``."""
    return dataclasses.replace(title, pointer=pointer, rank=rank)


def last(when: dt.datetime = OLD, where: int = 7, title: int | None = 1) -> Validation:
    """The card's newest validation, at ``when`` and location ``where``."""
    return Validation(when, where, title)


def state(
    newest: Validation | None,
    titles: Iterable[Title],
    counters: dict[int, int] | None = None,
    ratified: bool = True,
    env: CardEnvironment = ENV,
) -> CardState:
    """A card state as a layout would decode it; ``counters`` by title pointer."""
    with_counters = [
        dataclasses.replace(
            t, counter=Counter(t.pointer, CounterUnit.JOURNEYS, counters[t.pointer])
        )
        if counters and t.pointer in counters
        else t
        for t in titles
    ]
    validations = (newest,) if newest is not None else ()
    return CardState(SERIAL, env, validations, tuple(with_counters), ratified=ratified)


@pytest.fixture
def rules() -> FareRules:
    """The shipped rules."""
    return load_model(CONFIG / "fares.yaml", FareRules)


def run(card: CardState, rules: FareRules, now: dt.datetime = NOW):
    """decide() at this station."""
    return decide(card, TapContext(now, HERE), rules)


class TestDecide:
    """The order of the demo procedure, with the demo's pitfalls designed around."""

    def test_season_pass(self, rules: FareRules) -> None:
        """A valid season pass is granted with no debit and an event at this station."""
        decision = run(state(last(), [at(1, SEASON)]), rules)
        assert decision.verdict is Verdict.GRANT
        assert decision.reason is Reason.SEASON_PASS_VALID
        assert decision.debit is None
        assert decision.event is not None and decision.event.location == HERE
        assert decision.event.when == NOW and decision.event.title == 1

    def test_multi_trip_debits_one(self, rules: FareRules) -> None:
        """A carnet with 3 trips pays 1 and reports 2 left."""
        decision = run(state(last(), [at(1, CARNET)], {1: 3}), rules)
        assert decision.verdict is Verdict.GRANT
        assert (decision.debit and decision.debit.title, decision.remaining) == (1, 2)

    def test_stored_value_is_debited(self, rules: FareRules) -> None:
        """Stored value is debited by its fare (the demo forgot to: pitfall 1)."""
        decision = run(state(last(), [at(1, PURSE)], {1: 5}), rules)
        assert decision.reason is Reason.VALUE_DEBITED
        assert decision.debit is not None and decision.debit.units == 2
        assert decision.remaining == 3

    def test_insufficient_value(self, rules: FareRules) -> None:
        """Stored value below the fare is refused, priority unchanged."""
        decision = run(state(last(), [at(1, PURSE)], {1: 1}), rules)
        assert decision.verdict is Verdict.DENY
        assert decision.reason is Reason.INSUFFICIENT_VALUE

    def test_priority_order(self, rules: FareRules) -> None:
        """The card's best-ranked title is used first, even in a later record."""
        decision = run(state(last(), [at(1, CARNET, 2), at(2, SEASON, 1)], {1: 5}), rules)
        assert decision.contract == 2
        assert decision.debit is None

    def test_expired_falls_through_and_is_marked(self, rules: FareRules) -> None:
        """An expired pass is skipped for the carnet, and the decision retires it."""
        decision = run(state(last(), [at(1, EXPIRED, 1), at(2, CARNET, 2)], {2: 4}), rules)
        assert decision.contract == 2
        assert decision.event is not None
        assert decision.retire == (1,)

    def test_only_expired(self, rules: FareRules) -> None:
        """Nothing valid: denied as expired."""
        decision = run(state(last(), [at(1, EXPIRED)]), rules)
        assert (decision.verdict, decision.reason) == (Verdict.DENY, Reason.EXPIRED_TITLE)

    def test_no_trips_left(self, rules: FareRules) -> None:
        """A carnet at 0 is refused."""
        decision = run(state(last(), [at(1, CARNET)], {1: 0}), rules)
        assert decision.reason is Reason.NO_TRIPS_LEFT
        assert decision.retire == ()  # a refusal writes nothing

    def test_empty_card(self, rules: FareRules) -> None:
        """A card that lists no title is a clean card."""
        clean = dataclasses.replace(state(None, []), listed=False)
        assert run(clean, rules).reason is Reason.EMPTY_CARD
        assert run(state(last(), []), rules).reason is Reason.NO_VALID_TITLE

    def test_environment_checks(self, rules: FareRules) -> None:
        """An unreadable environment, then an expired one, are refused first."""
        bad = dataclasses.replace(ENV, format_error="environment version 2 is not 1")
        decision = run(state(last(), [at(1, SEASON)], env=bad), rules)
        assert (decision.reason, decision.explanation) == (
            Reason.ENV_WRONG_VERSION,
            "environment version 2 is not 1",
        )
        old = CardEnvironment(dt.date(2025, 1, 1))
        assert run(state(last(), [at(1, SEASON)], env=old), rules).reason is (Reason.ENV_EXPIRED)

    def test_anti_passback_same_group(self, rules: FareRules) -> None:
        """A ratified validation 30 s ago at a station of the same group is refused."""
        recent = last(NOW - dt.timedelta(seconds=30), where=102)
        assert run(state(recent, [at(1, SEASON)]), rules).reason is Reason.ANTI_PASSBACK

    def test_minute_resolution(self, rules: FareRules) -> None:
        """An event stamped 08:00 still blocks at 08:01:50, and no longer at 08:02:00."""
        at_eight = last(NOW, where=HERE)
        card = state(at_eight, [at(1, SEASON)])
        blocked = run(card, rules, NOW + dt.timedelta(seconds=110))
        assert blocked.reason is Reason.ANTI_PASSBACK
        assert run(card, rules, NOW + dt.timedelta(minutes=2)).verdict is Verdict.GRANT

    def test_other_group_is_not_passback(self, rules: FareRules) -> None:
        """The same 30 s at another station group is a new journey."""
        recent = last(NOW - dt.timedelta(seconds=30), where=201)
        assert run(state(recent, [at(1, SEASON)]), rules).verdict is Verdict.GRANT

    def test_recovery_of_unratified(self, rules: FareRules) -> None:
        """Unratified and recent at this group: recovered, no debit, no event."""
        recent = last(NOW - dt.timedelta(seconds=30), where=HERE)
        decision = run(state(recent, [at(1, CARNET)], {1: 4}, ratified=False), rules)
        assert decision.verdict is Verdict.RECOVER
        assert decision.debit is None and decision.event is None

    def test_unratified_but_old_pays(self, rules: FareRules) -> None:
        """Unratified but outside the window: a normal validation."""
        decision = run(state(last(), [at(1, CARNET)], {1: 4}, ratified=False), rules)
        assert decision.verdict is Verdict.GRANT and decision.debit is not None

    def test_deny_list(self, rules: FareRules) -> None:
        """A serial on the deny list is refused before anything else."""
        listed = rules.model_copy(update={"deny_list": [SERIAL.hex()]})
        assert run(state(last(), [at(1, SEASON)]), listed).reason is Reason.DENY_LISTED

    def test_pure_and_deterministic(self, rules: FareRules) -> None:
        """The same inputs give the same decision."""
        card = state(last(), [at(1, CARNET, 2), at(2, SEASON, 1)], {1: 5})
        assert run(card, rules) == run(card, rules)


class TestFareFile:
    """A broken fares.yaml stops with the file, the line and the field."""

    def test_bad_value_names_line_and_field(self, tmp_path: Path) -> None:
        """A negative anti-passback window is refused at its line."""
        text = (
            (CONFIG / "fares.yaml")
            .read_text()
            .replace("anti_passback_minutes: 1", "anti_passback_minutes: -5")
        )
        path = tmp_path / "fares.yaml"
        path.write_text(text)
        line = text.splitlines().index("anti_passback_minutes: -5") + 1
        with pytest.raises(ConfigError) as caught:
            load_model(path, FareRules)
        assert caught.value.line == line
        assert "anti_passback_minutes" in str(caught.value)

    def test_yaml_syntax_error(self, tmp_path: Path) -> None:
        """Broken YAML is a ConfigError with its line."""
        path = tmp_path / "fares.yaml"
        path.write_text("station:\n  location_id: [1\nproducts: []\n")
        with pytest.raises(ConfigError, match="YAML syntax") as caught:
            load_model(path, FareRules)
        assert caught.value.line is not None

    def test_duplicate_tariff(self, tmp_path: Path) -> None:
        """Two products with one tariff are refused."""
        path = tmp_path / "fares.yaml"
        path.write_text(
            "station: {location_id: 1}\nproducts:\n"
            "  - {tariff: 1, kind: season_pass, name: A}\n"
            "  - {tariff: 1, kind: multi_trip, name: B}\n"
        )
        with pytest.raises(ConfigError, match="share a tariff"):
            load_model(path, FareRules)


SV_RULES_YAML = """
station: {location_id: 101, zone: 2}
station_groups: {central: [101, 102]}
products:
  - {tariff: 1, kind: season_pass, name: Pass}
  - {tariff: 2, kind: multi_trip, name: Carnet}
  - {tariff: 3, kind: stored_value, name: Purse, units_per_trip: 4,
     fare_by_zone: {1: 2, 2: 6}, off_peak_percent: 50}
  - {tariff: 4, kind: season_pass, name: Zone 1 pass, zones: [1]}
peak_periods:
  - {days: [0, 1, 2, 3, 4], start: "07:00", end: "09:30"}
holder_profiles:
  7: {name: student, percent: 50}
transfer_minutes: 60
"""
MONDAY = dt.datetime(2026, 3, 2, 8, 0)  # a Monday, in the peak
STUDENT = CardEnvironment(dt.date(2030, 1, 1), holder_profile=7)
ZONE1_PASS = Title(0, 4, kind=TitleKind.SEASON_PASS, valid_until=dt.date(2026, 12, 31))


@pytest.fixture
def sv_rules(tmp_path: Path) -> FareRules:
    """Rules with zones, peak periods, a student profile and transfers, at a zone 2 station."""
    path = tmp_path / "fares.yaml"
    path.write_text(SV_RULES_YAML)
    return load_model(path, FareRules)


@pytest.mark.parametrize(
    ("label", "now", "env", "units", "expected"),
    [
        ("zone 2 fare in the peak", MONDAY, ENV, 10, (Verdict.GRANT, 6)),
        (
            "peak starts at 07:00 sharp",
            MONDAY.replace(hour=7, minute=0),
            ENV,
            10,
            (Verdict.GRANT, 6),
        ),
        ("06:59 is off-peak: half", MONDAY.replace(hour=6, minute=59), ENV, 10, (Verdict.GRANT, 3)),
        ("peak ends before 09:30", MONDAY.replace(hour=9, minute=30), ENV, 10, (Verdict.GRANT, 3)),
        ("Sunday is off-peak", MONDAY + dt.timedelta(days=6), ENV, 10, (Verdict.GRANT, 3)),
        ("student pays half", MONDAY, STUDENT, 10, (Verdict.GRANT, 3)),
        (
            "student off-peak pays a quarter, rounded",
            MONDAY.replace(hour=12),
            STUDENT,
            10,
            (Verdict.GRANT, 2),
        ),
        ("exactly enough", MONDAY, ENV, 6, (Verdict.GRANT, 6)),
        ("one short", MONDAY, ENV, 5, (Verdict.DENY, 0)),
        ("zero units", MONDAY, ENV, 0, (Verdict.DENY, 0)),
    ],
)
def test_stored_value_fares(
    sv_rules: FareRules,
    label: str,
    now: dt.datetime,
    env: CardEnvironment,
    units: int,
    expected: tuple[Verdict, int],
) -> None:
    """Stored value: zone fare, peak boundaries, reduced fare, exact and insufficient value."""
    card = state(last(), [at(1, PURSE)], {1: units}, env=env)
    decision = decide(card, TapContext(now, HERE), sv_rules)
    debited = decision.debit.units if decision.debit else 0
    assert (decision.verdict, debited) == expected, label


class TestValidityAndZones:
    """Validity on its last day, zones of a season pass."""

    def test_last_day_is_valid(self, rules: FareRules) -> None:
        """A contract is valid through its end date, and not the day after."""
        final = dataclasses.replace(SEASON, valid_until=NOW.date())
        card = state(last(), [at(1, final)])
        assert run(card, rules).verdict is Verdict.GRANT
        assert run(card, rules, NOW + dt.timedelta(days=1)).reason is Reason.EXPIRED_TITLE

    def test_validity_start_is_enforced(self, rules: FareRules) -> None:
        """Not before its start date, nor before its start time that day; from then, valid."""
        tomorrow = dataclasses.replace(SEASON, valid_from=NOW.date() + dt.timedelta(days=1))
        decision = run(state(last(), [at(1, tomorrow)]), rules)
        assert (decision.verdict, decision.reason) == (Verdict.DENY, Reason.NOT_YET_VALID)
        assert decision.retire == ()
        at_nine = dataclasses.replace(SEASON, valid_from=NOW.date(), valid_from_time=dt.time(9))
        assert run(state(last(), [at(1, at_nine)]), rules).reason is Reason.NOT_YET_VALID
        assert run(state(last(), [at(1, at_nine)]), rules, NOW.replace(hour=9)).verdict is (
            Verdict.GRANT
        )

    def test_a_title_not_yet_valid_lets_the_next_one_pay(self, rules: FareRules) -> None:
        """A pass starting tomorrow is skipped for the carnet, and not retired."""
        tomorrow = dataclasses.replace(SEASON, valid_from=NOW.date() + dt.timedelta(days=1))
        decision = run(state(last(), [at(1, tomorrow, 1), at(2, CARNET, 2)], {2: 3}), rules)
        assert (decision.reason, decision.contract, decision.retire) == (
            Reason.TRIP_DEBITED,
            2,
            (),
        )

    def test_validity_end_time_is_enforced(self, rules: FareRules) -> None:
        """Ending today at 07:30, a pass is expired at 08:00 and retired."""
        ending = dataclasses.replace(
            SEASON, valid_until=NOW.date(), valid_until_time=dt.time(7, 30)
        )
        decision = run(state(last(), [at(1, ending)]), rules)
        assert decision.reason is Reason.EXPIRED_TITLE
        assert run(
            state(last(), [at(1, ending)]), rules, NOW.replace(hour=7, minute=30)
        ).verdict is (Verdict.GRANT)

    def test_title_zones_and_blocked_titles(self, rules: FareRules) -> None:
        """A title valid in zones 2-3 is refused at a zone 1 station; a blocked one is skipped."""
        zoned = dataclasses.replace(SEASON, zones=frozenset({2, 3}))
        assert run(state(last(), [at(1, zoned)]), rules).reason is Reason.ZONE_NOT_COVERED
        blocked = dataclasses.replace(SEASON, status=TitleStatus.BLOCKED, status_note="suspended")
        decision = run(state(last(), [at(1, blocked)]), rules)
        assert (decision.reason, decision.explanation) == (
            Reason.NO_VALID_TITLE,
            "contract 1: suspended",
        )

    def test_zone_pass_outside_its_zone(self, sv_rules: FareRules) -> None:
        """A zone 1 pass is refused at a zone 2 station."""
        card = state(last(), [at(1, ZONE1_PASS)])
        decision = decide(card, TapContext(MONDAY, HERE), sv_rules)
        assert decision.reason is Reason.ZONE_NOT_COVERED


class TestTransfer:
    """A paid entry elsewhere within the window makes this entry a free interchange."""

    def paid_entry(
        self, minutes_ago: int, where: int = 201, kind: Transition = Transition.ENTRY
    ) -> Validation:
        """The card's last validation: a paid entry ``minutes_ago`` at ``where``."""
        return Validation(MONDAY - dt.timedelta(minutes=minutes_ago), where, 1, kind)

    @pytest.mark.parametrize(("minutes_ago", "free"), [(1, True), (60, True), (61, False)])
    def test_window_edge(self, sv_rules: FareRules, minutes_ago: int, free: bool) -> None:
        """60 minutes after a paid entry elsewhere is still free; 61 pays."""
        card = state(self.paid_entry(minutes_ago), [at(1, CARNET)], {1: 5})
        decision = decide(card, TapContext(MONDAY, HERE), sv_rules)
        assert (decision.reason is Reason.TRANSFER) is free
        if free:
            assert decision.debit is None
            assert (
                decision.event is not None and decision.event.transition is Transition.INTERCHANGE
            )
        else:
            assert decision.debit is not None

    def test_no_transfer_within_the_same_group(self, sv_rules: FareRules) -> None:
        """A paid entry at a station of the same group is not a transfer."""
        card = state(self.paid_entry(10, where=102), [at(1, CARNET)], {1: 5})
        assert decide(card, TapContext(MONDAY, HERE), sv_rules).reason is Reason.TRIP_DEBITED

    def test_no_transfer_after_a_transfer(self, sv_rules: FareRules) -> None:
        """An interchange does not open another free interchange."""
        card = state(self.paid_entry(10, kind=Transition.INTERCHANGE), [at(1, CARNET)], {1: 5})
        assert decide(card, TapContext(MONDAY, HERE), sv_rules).reason is Reason.TRIP_DEBITED


class TestRecoveryEvent:
    """recovery_writes_event: a recovery may append an event of its own."""

    def test_off_by_default_on_when_asked(self, rules: FareRules) -> None:
        """Off: no event; on: the same contract's event at this station, now."""
        recent = last(NOW - dt.timedelta(seconds=30), where=HERE)
        card = state(recent, [at(1, CARNET)], {1: 4}, ratified=False)
        assert run(card, rules).event is None
        writing = rules.model_copy(update={"recovery_writes_event": True})
        decision = run(card, writing)
        assert decision.verdict is Verdict.RECOVER and decision.debit is None
        assert decision.event is not None
        assert decision.event.when == NOW and decision.event.title == 1


NETWORK_RULES_YAML = """
network: demo
station: {location_id: 101}
products:
  - {tariff: 1, kind: season_pass, name: Any season pass}
  - {network: "250901", tariff: 1, kind: multi_trip, name: Navigo carnet}
  - {network: 250916, tariffs: [0x4000, 0x40FF], kind: season_pass, name: Tisseo pass}
  - {network: demo, tariff: 2, kind: multi_trip, name: Demo carnet}
  - {network: "250901", tariff: 0xC412, kind: stored_value, name: Navigo value}
"""


class TestProductsByNetwork:
    """Products are keyed by network and tariff (any width, or a range)."""

    @pytest.fixture
    def by_network(self, tmp_path: Path) -> FareRules:
        """Rules with a product for any network, network products and a tariff range."""
        path = tmp_path / "fares.yaml"
        path.write_text(NETWORK_RULES_YAML)
        return load_model(path, FareRules)

    def test_a_network_product_comes_before_one_for_any_network(
        self, by_network: FareRules
    ) -> None:
        """Tariff 1 on 250901 is that network's carnet; on another network the generic pass."""
        own = by_network.product(1, "250901")
        anywhere = by_network.product(1, "250502")
        assert own is not None and own.name == "Navigo carnet"
        assert anywhere is not None and anywhere.name == "Any season pass"

    def test_a_range_sells_its_tariffs_on_its_network_only(self, by_network: FareRules) -> None:
        """0x4000..0x40FF on 250916 (written as a YAML integer): ends included, not beyond."""
        assert [
            getattr(by_network.product(t, "250916"), "name", None)
            for t in (0x3FFF, 0x4000, 0x40FF, 0x4100)
        ] == [None, "Tisseo pass", "Tisseo pass", None]
        assert by_network.product(0x4000, "250901") is None

    def test_a_card_naming_no_network_is_this_network(self, by_network: FareRules) -> None:
        """A demo title (no network) matches the rules' own network's products."""
        product = by_network.product(2, None)
        assert product is not None and product.name == "Demo carnet"
        assert by_network.product(2, "250901") is None

    def test_a_16_bit_tariff_is_decided(self, by_network: FareRules) -> None:
        """A 250901 title with tariff C412h pays from its counter as that network's product."""
        purse = Title(
            1,
            0xC412,
            network="250901",
            kind=TitleKind.STORED_VALUE,
            valid_until=dt.date(2030, 1, 1),
        )
        decision = decide(state(last(), [purse], {1: 40}), TapContext(NOW, HERE), by_network)
        assert (decision.reason, decision.product) == (Reason.VALUE_DEBITED, "Navigo value")
        assert decision.remaining == 39

    def test_the_shipped_file_still_sells_every_tariff_on_any_network(
        self, rules: FareRules
    ) -> None:
        """The demo fares.yaml names no network: its tariffs sell on every network."""
        for network in (None, "250901", "250916"):
            found = rules.product(1, network)
            assert found is not None and found.name == "Season pass"

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            ("{tariff: 3, kind: season_pass, name: A}", "{tariff: 3, kind: multi_trip, name: B}"),
            (
                "{network: '250901', tariffs: [10, 20], kind: season_pass, name: A}",
                "{network: '250901', tariff: 20, kind: multi_trip, name: B}",
            ),
            (
                "{network: '250901', tariffs: [10, 20], kind: season_pass, name: A}",
                "{network: '250901', tariffs: [5, 10], kind: multi_trip, name: B}",
            ),
        ],
    )
    def test_overlapping_products_are_refused_at_their_line(
        self, tmp_path: Path, first: str, second: str
    ) -> None:
        """Two products of one network whose tariffs meet: refused at the second one's line."""
        path = tmp_path / "fares.yaml"
        path.write_text(
            "station: {location_id: 1}\nproducts:\n"
            f"  - {{tariff: 1, kind: season_pass, name: X}}\n  - {first}\n  - {second}\n"
        )
        with pytest.raises(ConfigError, match="overlaps products.1") as caught:
            load_model(path, FareRules)
        assert caught.value.line == 5
        assert "products.2" in str(caught.value)

    def test_products_of_other_networks_do_not_overlap(self, tmp_path: Path) -> None:
        """One tariff on two networks, and once for any network: three products, no overlap."""
        path = tmp_path / "fares.yaml"
        path.write_text(
            "station: {location_id: 1}\nproducts:\n"
            "  - {tariff: 7, kind: season_pass, name: A}\n"
            "  - {network: '250901', tariff: 7, kind: season_pass, name: B}\n"
            "  - {network: '250916', tariff: 7, kind: season_pass, name: C}\n"
        )
        assert len(load_model(path, FareRules).products) == 3

    @pytest.mark.parametrize(
        "product",
        [
            "{kind: season_pass, name: No tariff}",
            "{tariff: 1, tariffs: [1, 2], kind: season_pass, name: Both}",
            "{tariffs: [9, 2], kind: season_pass, name: Backwards}",
            "{tariff: -1, kind: season_pass, name: Negative}",
        ],
    )
    def test_a_product_names_its_tariffs_once(self, tmp_path: Path, product: str) -> None:
        """A tariff or a range, not both, not neither, first before last, not negative."""
        path = tmp_path / "fares.yaml"
        path.write_text(f"station: {{location_id: 1}}\nproducts:\n  - {product}\n")
        with pytest.raises(ConfigError) as caught:
            load_model(path, FareRules)
        assert caught.value.line == 3

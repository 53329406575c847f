# SPDX-License-Identifier: Apache-2.0
"""PKI taps in process (issue 19): no SAM, the chain verified and cached, the card's signature.

The cards are emulators certified by the shipped test PKI (lab.pki.cards); the validator is a
TapProcessor with no SAM and the shipped test root. A gate opens only on a verified signature.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from pathlib import Path

import pytest
from conftest import CARDS, CONFIG, DEMO_AID, make_card

from calypso.commands import CardIns
from calypso.emulator.dispatch import CardEmulator
from calypso.layouts.demo import SFI_COUNTERS
from calypso.pki.chain import Revocations
from calypso.pki.fields import TEST_SCOPES
from lab.pki.cards import REVOKED_CA_REFERENCE, PkiCard, hostile_pki_cards
from readers.emulated import EmulatedReader, Fault, FaultKind
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.outcome import Outcome
from validator.engine.pki.files import RootKeyFile
from validator.engine.pki.trust import CardTrust, TrustPolicy
from validator.engine.recording import TapNotServedError
from validator.engine.tap import TapProcessor, TapRecord
from validator.journal.entry import JournalEntry
from validator.journal.intent import ClosingIntent, read_record
from validator.journal.writer import Journal, journal_files
from yamlconfig import load_model

START = dt.datetime(2026, 3, 2, 8, 0)
LATER = dt.timedelta(minutes=30)
SERIAL = bytes.fromhex("00000000C0FFEE42")
MULTI_TRIP = CARDS / "multi_trip.yaml"
# A first PKI tap: select, card certificate (2), CA certificate (2), open + environment, event,
# contracts, counters, decrease, append, close, ratification.
FIRST_TAP = [0xA4, 0xCA, 0xCA, 0xCA, 0xCA, 0x8A, 0xB2, 0xB2, 0xB2, 0x30, 0xE2, 0x8E, 0xB2]
RETURNING_TAP = [0xA4, 0x8A, 0xB2, 0xB2, 0xB2, 0x30, 0xE2, 0x8E, 0xB2]


def trust(**policy: object) -> CardTrust:
    """The shipped test root, the test scope accepted, a small card cache."""
    root = load_model(CONFIG / "pki" / "test_pki_root.yaml", RootKeyFile).root()
    fields: dict[str, object] = {"scopes": TEST_SCOPES}
    fields.update(policy)
    return CardTrust([root], TrustPolicy(**fields), 4, random.Random(5).randbytes)  # type: ignore[arg-type]


class Gate:
    """A validator with no SAM: a TapProcessor over the PKI trust, an emulated reader."""

    def __init__(self, rules: FareRules, card_trust: CardTrust | None = None) -> None:
        self.reader = EmulatedReader("card")
        self.processor = TapProcessor(None, rules, [DEMO_AID], "pki-1", pki=card_trust or trust())

    def tap(self, card: CardEmulator, now: dt.datetime, fault: Fault | None = None) -> TapRecord:
        """One tap of ``card`` at station 101."""
        self.reader.insert(card)
        if fault is not None:
            self.reader.inject(fault)
        try:
            return self.processor.process(self.reader.connect(), TapContext(now, 101))
        finally:
            self.reader.clear_faults()
            self.reader.remove()


def lines(directory: Path) -> list[str]:
    """The journal's lines, in order."""
    return [line for p in journal_files(directory) for line in p.read_text().splitlines()]


def ins_of(record: TapRecord) -> list[int]:
    """The instruction bytes of the tap's card APDUs."""
    return [bytes(ex.command)[1] for ex in record.result.card_trace]


@pytest.fixture
def gate(rules: FareRules) -> Gate:
    """A fresh validator without SAM."""
    return Gate(rules)


@pytest.fixture(scope="module")
def honest() -> PkiCard:
    """How an honest PKI multi-trip card is personalised."""
    return PkiCard(MULTI_TRIP, SERIAL)


class TestGranted:
    """A PKI card is validated with no SAM at all, and only on its verified signature."""

    def test_first_tap(self, gate: Gate, honest: PkiCard) -> None:
        """Certificates read, chain verified, a PKI session signed and verified: granted."""
        card = honest.card()
        trips = card.counter(SFI_COUNTERS, 1)
        record = gate.tap(card, START)
        result = record.result
        assert result.outcome is Outcome.GRANTED
        assert result.mac_verified and result.debit == 1
        assert card.counter(SFI_COUNTERS, 1) == trips - 1
        assert ins_of(record) == FIRST_TAP
        assert result.sam_trace == ()
        open_command = bytes(result.card_trace[5].command)
        assert open_command[3] & 0x07 == 0x03  # PKI mode
        assert result.card_mac is not None and len(result.card_mac) == 64
        assert result.pki is not None and result.pki["cached"] is False
        assert (
            record.entry["pki"]["ca"]
            == "0954455354504B49434100000000000000000000000000000100000001"
        )
        assert record.entry["sam_serial"] is None and record.entry["terminal_mac"] is None

    def test_returning_card_reads_no_certificate(self, gate: Gate, honest: PkiCard) -> None:
        """A returning card costs no certificate APDU: 9 APDUs, its key still signs."""
        card = honest.card()
        gate.tap(card, START)
        again = gate.tap(card, START + LATER)
        assert again.result.outcome is Outcome.GRANTED and again.result.mac_verified
        assert ins_of(again) == RETURNING_TAP
        assert again.result.pki is not None and again.result.pki["cached"] is True

    def test_known_ca_costs_no_apdu(self, gate: Gate, honest: PkiCard) -> None:
        """A new card of a CA already verified reads its own certificate only (2 Get Data)."""
        gate.tap(honest.card(), START)
        other = honest.but(serial=bytes.fromhex("00000000C0FFEE43")).card()
        record = gate.tap(other, START + LATER)
        assert record.result.outcome is Outcome.GRANTED
        assert ins_of(record).count(CardIns.GET_DATA) == 2

    def test_cache_is_bounded(self, gate: Gate, honest: PkiCard) -> None:
        """The card cache keeps its size: the least recently seen card is read again."""
        cards = [honest.but(serial=SERIAL[:-1] + bytes((n,))).card() for n in range(6)]
        for card in cards:
            gate.tap(card, START)
        pki = gate.processor.pki
        assert pki is not None and pki.cached_cards == 4
        again = gate.tap(cards[0], START + LATER)
        assert again.result.outcome is Outcome.GRANTED
        assert ins_of(again).count(CardIns.GET_DATA) == 2

    def test_symmetric_mode_with_a_sam_and_no_root(self, station: object, honest: PkiCard) -> None:
        """Without a trusted root, a validator with a SAM runs a PKI card in symmetric mode."""
        from conftest import Station

        assert isinstance(station, Station)
        result = station.tap(honest.card(), START)
        assert result.outcome is Outcome.GRANTED and result.mac_verified
        assert CardIns.GET_DATA not in [bytes(ex.command)[1] for ex in result.card_trace]
        assert result.pki is None


class TestRefused:
    """A wrong signature, certificate or chain never opens the gate."""

    def test_symmetric_card_without_sam(self, gate: Gate) -> None:
        """A validator without SAM refuses a symmetric card, unchanged, with a clear reason."""
        card = make_card("multi_trip")
        before = card.snapshot().files
        record = gate.tap(card, START)
        assert record.result.outcome is Outcome.DENIED
        assert record.result.reason == "no_sam"
        assert "no SAM" in record.result.explanation
        assert card.snapshot().files == before

    def test_forged_signature(self, gate: Gate, honest: PkiCard) -> None:
        """A card signing with another key than its certified one is refused, and forgotten."""
        card = honest.but(forged=True).card()
        record = gate.tap(card, START)
        assert record.result.outcome is Outcome.DENIED
        assert record.result.reason == "card_signature_invalid"
        assert not record.result.mac_verified
        pki = gate.processor.pki
        assert pki is not None and pki.cached_cards == 0  # read afresh at its next tap

    @pytest.mark.parametrize(
        ("name", "reason"),
        [
            ("pki_other_serial", "certificate_mismatch"),
            ("pki_wrong_key_reference", "unknown_issuer"),
            ("pki_expired_ca", "certificate_expired"),
        ],
    )
    def test_refused_before_any_session(self, gate: Gate, name: str, reason: str) -> None:
        """A refused certificate ends the tap before the Open: the card is left as it was."""
        card = hostile_pki_cards(MULTI_TRIP, SERIAL)[name].card()
        counter = card.transaction_counter
        record = gate.tap(card, START)
        assert record.result.outcome is Outcome.DENIED
        assert record.result.reason == reason
        assert card.transaction_counter == counter
        assert CardIns.OPEN_SECURE_SESSION not in ins_of(record)

    def test_revoked_ca(self, rules: FareRules) -> None:
        """A CA the revocation list names is refused."""
        revoked = Revocations(ca_references=frozenset({REVOKED_CA_REFERENCE.raw}))
        gate = Gate(rules, trust(revocations=revoked))
        card = hostile_pki_cards(MULTI_TRIP, SERIAL)["pki_revoked_ca"].card()
        assert gate.tap(card, START).result.reason == "certificate_revoked"

    def test_revoked_card_cached(self, rules: FareRules, honest: PkiCard) -> None:
        """A card revoked after it was cached is refused at its next tap (cache re-checked)."""
        card_trust = trust()
        gate = Gate(rules, card_trust)
        card = honest.card()
        assert gate.tap(card, START).result.outcome is Outcome.GRANTED
        card_trust.policy = TrustPolicy(
            scopes=TEST_SCOPES, revocations=Revocations(card_serials=frozenset({SERIAL}))
        )
        record = gate.tap(card, START + LATER)
        assert record.result.reason == "certificate_revoked"
        assert CardIns.GET_DATA not in ins_of(record)

    def test_truncated_certificate(self, gate: Gate, honest: PkiCard) -> None:
        """A card certificate cut short is refused as malformed."""
        record = gate.tap(honest.card(), START, Fault(FaultKind.SHORT_RESPONSE, 3, cut=20))
        assert record.result.outcome is Outcome.DENIED
        assert record.result.reason == "certificate_malformed"

    def test_denied_tap_reselects(self, gate: Gate, honest: PkiCard) -> None:
        """A fare refusal cancels the PKI session by selecting again, never with the abort."""
        card = honest.card()
        gate.tap(card, START)
        before = card.snapshot().files
        record = gate.tap(card, START + dt.timedelta(seconds=20))  # anti-passback
        assert record.result.outcome is Outcome.DENIED
        assert record.result.reason == "anti_passback"
        assert ins_of(record)[-1] == CardIns.SELECT
        assert CardIns.CLOSE_SECURE_SESSION not in ins_of(record)
        assert card.snapshot().files == before
        assert not card.session_open


class TestInterrupted:
    """Tearing and unknown outcomes are handled as for symmetric taps."""

    def test_lost_close_is_unknown_then_resolved(self, gate: Gate, honest: PkiCard) -> None:
        """A Close sent and unanswered is unknown; the next tap settles it from the event log."""
        card = honest.card()
        gate.tap(card, START)  # cached: the Close is APDU 8
        trips = card.counter(SFI_COUNTERS, 1)
        lost = gate.tap(card, START + LATER, Fault(FaultKind.REMOVED_DURING, 8))
        assert lost.result.outcome is Outcome.UNKNOWN
        assert card.counter(SFI_COUNTERS, 1) == trips - 1  # the card committed
        again = gate.tap(card, START + LATER + dt.timedelta(seconds=15))
        assert again.resolved is not None and again.resolved["committed"] is True
        assert again.result.outcome is Outcome.RECOVERED
        assert card.counter(SFI_COUNTERS, 1) == trips - 1  # paid once

    def test_lost_before_close_writes_nothing(self, gate: Gate, honest: PkiCard) -> None:
        """A card lost before Close (at the event's Append) is not charged: its session drops."""
        card = honest.card()
        gate.tap(card, START)
        trips = card.counter(SFI_COUNTERS, 1)
        lost = gate.tap(card, START + LATER, Fault(FaultKind.REMOVED_BEFORE, 7))
        assert lost.result.outcome is Outcome.CARD_LOST
        assert card.counter(SFI_COUNTERS, 1) == trips


class TestClosingIntent:
    """A PKI Close that may commit writes has its closing intent first, as a symmetric one."""

    def test_intent_before_the_pki_close(self, tmp_path: Path, rules: FareRules) -> None:
        """The intent names the card, its counter and the writes, and precedes the tap entry."""
        with Journal(tmp_path) as journal:
            gate = Gate(rules)
            gate.processor.journal = journal
            record = gate.tap(PkiCard(MULTI_TRIP, SERIAL).card(), START)
        assert record.result.outcome is Outcome.GRANTED
        intent, tap = (read_record(json.loads(line)) for line in lines(tmp_path))
        assert isinstance(intent, ClosingIntent) and isinstance(tap, JournalEntry)
        assert intent.card == SERIAL.hex().upper() and intent.sam_serial is None
        assert list(intent.writes) == [w.hex().upper() for w in record.result.writes]
        assert intent.seq + 1 == tap.seq

    def test_an_intent_refused_drops_the_pki_session(
        self, tmp_path: Path, rules: FareRules, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The intent's fsync fails: no PKI Close is sent, the card keeps its trips."""
        card = PkiCard(MULTI_TRIP, SERIAL).card()
        trips = card.counter(SFI_COUNTERS, 1)
        real = os.fsync
        with Journal(tmp_path) as journal:
            gate = Gate(rules)
            gate.processor.journal = journal
            journal.append({"card": None, "outcome": "denied"})

            def failing(fd: int) -> None:
                monkeypatch.setattr(os, "fsync", real)  # the intent's only
                raise OSError(5, "Input/output error")

            monkeypatch.setattr(os, "fsync", failing)
            with pytest.raises(TapNotServedError, match="closing intent"):
                gate.tap(card, START)
        assert card.counter(SFI_COUNTERS, 1) == trips
        entry = json.loads(lines(tmp_path)[-1])
        assert entry["reason"] == "journal_unavailable"
        commands = [x["c"][2:4] for x in entry["trace"]["card"]]
        assert "8E" not in commands and commands[-1] == "A4"  # dropped by a new Select

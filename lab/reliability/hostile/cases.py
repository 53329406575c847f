# SPDX-License-Identifier: Apache-2.0
"""The catalogue of hostile cards: each case is a real card behind lying layers.

A case names the real emulators it may touch (so that the invariants can look at what each
really holds) and whether the gate must stay shut whatever happens (a forged, cloned, replayed
or swapped card); the other cases may be granted only if the card's data and MAC are genuine.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from calypso.commands import CardIns
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.files import CardImage
from calypso.emulator.profile import CardProfile, load_profile
from lab.pki.cards import hostile_pki_cards
from lab.reliability.hostile.card import (
    FailOnce,
    HostileCard,
    Layer,
    MutateAt,
    Mutation,
    RecordClose,
    ReplayClose,
    RewriteAnswers,
    Slow,
    SwapAfterSelect,
    fci_serial_rewrite,
    fci_startup_rewrite,
)

# Demo-fleet profiles the validator's AIDs and layouts cover (a PKI card among them).
PKI_PROFILE = "pki/test_pki_multi_trip"
PROFILES = ("multi_trip", "season_pass", "sv_purse", "intercode", "expired", "empty", PKI_PROFILE)
PKI_SERIAL = bytes.fromhex("00000000C0FFEE82")  # the hostile PKI cards' (another card's)
SFI_ENV, SFI_EVENTS, SFI_CONTRACTS, SFI_COUNTERS, SFI_LIST = 0x07, 0x08, 0x09, 0x19, 0x1E


@dataclass
class Case:
    """One hostile tap (or a short series of taps of the same hostile card)."""

    name: str
    card: HostileCard
    real: list[CardEmulator]  # every real card the tap may touch
    must_stay_shut: bool = False
    prelude: list[HostileCard] = field(default_factory=list)  # honest taps before the case


class Fleet:
    """Loads each profile once and personalises cards from it with seeded randoms."""

    def __init__(self, cards_dir: Path, seed: int) -> None:
        self.cards_dir = cards_dir
        self.rnd = random.Random(seed)  # noqa: S311 - simulation randomness, by design
        self._profiles: dict[str, CardProfile] = {}

    def profile(self, name: str) -> CardProfile:
        """The parsed profile (cached)."""
        if name not in self._profiles:
            self._profiles[name] = load_profile(self.cards_dir / f"{name}.yaml")
        return self._profiles[name]

    def card(
        self, name: str, *, serial: bytes | None = None, keys_of: str | None = None
    ) -> CardEmulator:
        """A fresh card of profile ``name`` (optionally with another serial or another's keys)."""
        profile = self.profile(name)
        if keys_of is not None:
            profile = self.profile(keys_of).model_copy(
                update={"serial": profile.serial, "files": profile.files}
            )
        if serial is not None:
            profile = profile.model_copy(update={"serial": serial})
        seeded = random.Random(self.rnd.getrandbits(64))  # noqa: S311
        return CardEmulator(profile, rng=seeded.randbytes)


def personalise(card: CardEmulator, records: Mapping[tuple[int, int], bytes]) -> CardEmulator:
    """Write ``records`` ((SFI, number) -> bytes, fitted to the record size) into the card."""
    image = card.snapshot()
    files = {sfi: list(recs) for sfi, recs in image.files.items()}
    for (sfi, number), data in records.items():
        size = len(files[sfi][number - 1])
        files[sfi][number - 1] = data[:size].ljust(size, b"\x00")
    frozen = {sfi: tuple(recs) for sfi, recs in files.items()}
    card.restore(CardImage(frozen, image.transaction_counter, image.ratified, image.cells))
    return card


def _h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# Demo-layout records that decode to extreme values (calypso-data-model 3.3 byte layout).
_DEMO_EXTREMES: dict[str, dict[tuple[int, int], bytes]] = {
    "event_far_future": {(SFI_EVENTS, 1): _h("01 FFFF FFFF FFFFFFFF 01 02 00 00 00")},
    "event_far_past": {(SFI_EVENTS, 1): _h("01 0000 0000 00000000 01 02 00 00 00")},
    "event_priorities_31": {(SFI_EVENTS, 1): _h("01 1407 0348 00000001 01 1F 1F 1F 1F")},
    "event_priorities_ff": {(SFI_EVENTS, 1): _h("01 1407 0348 00000065 FF FF FF FF FF FF")},
    "event_version_ff": {(SFI_EVENTS, 1): _h("FF 1407 0348 00000001 01 02 00 00 00")},
    "contract_tariff_ff": {(SFI_CONTRACTS, 1): _h("01 FF 13FA 335C")},
    "contract_tariff_0": {(SFI_CONTRACTS, 1): _h("01 00 13FA 335C")},
    "contract_end_far_past": {(SFI_CONTRACTS, 1): _h("01 02 0000 0000")},
    "contract_sale_far_future": {(SFI_CONTRACTS, 1): _h("01 02 FFFF FFFF")},
    "contract_version_ff": {(SFI_CONTRACTS, 1): _h("FF 02 13FA 335C")},
    "counter_ffffff": {(SFI_COUNTERS, 1): _h("FFFFFF FFFFFF FFFFFF FFFFFF")},
    "counter_zero": {(SFI_COUNTERS, 1): _h("000000")},
    "env_end_far_past": {(SFI_ENV, 1): _h("01 00000002 0000 0000 00 00000000")},
    "env_end_far_future": {(SFI_ENV, 1): _h("01 FFFFFFFF FFFF FFFF FF FFFFFFFF")},
    "env_version_0": {(SFI_ENV, 1): _h("00 00000002 128D 335C 00 00000000")},
    "all_ff": {
        (sfi, 1): b"\xff" * 29 for sfi in (SFI_ENV, SFI_EVENTS, SFI_CONTRACTS, SFI_COUNTERS)
    },
}
# Extremes after which no contract can pay: the gate must stay shut.
_DEMO_SHUT = {
    "event_priorities_31",
    "contract_tariff_ff",
    "contract_tariff_0",
    "contract_end_far_past",
    "counter_zero",
    "env_end_far_past",
    "env_version_0",
    "event_version_ff",
}
_INTERCODE_FILES = ((SFI_ENV, 1), (SFI_EVENTS, 1), (SFI_LIST, 1), (SFI_CONTRACTS, 1),
                    (SFI_CONTRACTS, 2), (SFI_CONTRACTS, 3), (SFI_COUNTERS, 1))  # fmt: skip

# FCI lies (byte of the startup information, value): product type, options, buffer, subtype.
FCI_LIES = {
    "claims_rev2": (2, 0x06),
    "claims_light": (2, 0x92),
    "claims_basic": (2, 0x9A),
    "claims_unknown_type": (2, 0xFF),
    "claims_type_00": (2, 0x00),
    "claims_extended": (2, 0x28),
    "claims_pin_sv_options": (2, 0x27),
    "claims_no_sv": (2, 0x20),
    "buffer_00": (0, 0x00),
    "buffer_ff": (0, 0xFF),
    "subtype_00": (3, 0x00),
    "subtype_ff": (3, 0xFF),
    "subtype_01": (3, 0x01),
}


def scripted(fleet: Fleet, budget_s: float) -> Iterator[Case]:
    """The scripted hostile cards, in a fixed order."""
    yield from _extremes(fleet)
    for lie, (offset, value) in FCI_LIES.items():
        for profile in ("multi_trip", "sv_purse"):
            card = fleet.card(profile)
            layer = RewriteAnswers(CardIns.SELECT, fci_startup_rewrite(offset, value))
            yield Case(f"fci_{lie}/{profile}", HostileCard(card, layer), [card])
    yield from _close_refusals(fleet)
    yield from _replays(fleet)
    yield from _clones_and_swaps(fleet)
    yield from _pki(fleet)
    yield from _slow(fleet, budget_s)


def _extremes(fleet: Fleet) -> Iterator[Case]:
    for name, records in _DEMO_EXTREMES.items():
        card = personalise(fleet.card("multi_trip"), records)
        shut = name in _DEMO_SHUT
        yield Case(f"extreme_{name}", HostileCard(card), [card], must_stay_shut=shut)
    rnd = random.Random(9)  # noqa: S311 - simulation randomness, by design
    garbage: list[tuple[str, Callable[[int], bytes]]] = [
        ("ff", lambda n: b"\xff" * n),
        ("random", rnd.randbytes),
        ("alternating", lambda n: b"\xaa\x55" * n),
    ]
    for kind, make in garbage:
        for target in (*_INTERCODE_FILES, None):
            files = _INTERCODE_FILES if target is None else (target,)
            card = personalise(fleet.card("intercode"), {f: make(29) for f in files})
            where = "all" if target is None else f"{target[0]:02X}.{target[1]}"
            yield Case(f"intercode_{kind}_{where}", HostileCard(card), [card])


# Status words Close documents as refusals (the card did not commit, if it tells the truth).
CLOSE_REFUSALS = (0x6700, 0x6985, 0x6B00, 0x6988)


def _close_refusals(fleet: Fleet) -> Iterator[Case]:
    """The card commits its Close, then answers it with a refusal: it may cost its holder the
    trip, but never two, and the journal must show the debit that was sent."""
    for sw in CLOSE_REFUSALS:
        for profile in ("multi_trip", "sv_purse"):
            card = fleet.card(profile)
            lie = RewriteAnswers(CardIns.CLOSE_SECURE_SESSION, _with_sw(sw), last=1)
            yield Case(f"close_refused_{sw:04X}/{profile}", HostileCard(card, lie), [card])


def _with_sw(sw: int) -> Callable[[bytes], bytes]:
    """An answer rewrite that keeps the data and replaces the status word."""
    return lambda raw: raw[:-2] + sw.to_bytes(2, "big")


def _replays(fleet: Fleet) -> Iterator[Case]:
    for deliver in (False, True):
        card = fleet.card("multi_trip")
        recorder = RecordClose()
        honest = HostileCard(card, recorder)
        # The replayed answer is recorded during the prelude tap, before the case's own tap.
        replay = _LateReplay(recorder, deliver)
        mode = "delivered" if deliver else "swallowed"
        yield Case(f"replayed_close_{mode}", HostileCard(card, replay), [card], True, [honest])


@dataclass
class _LateReplay:
    """ReplayClose with the answer the recorder kept (known only once the prelude ran)."""

    recorder: RecordClose
    deliver: bool

    def __call__(self, index: int, command: bytes, forward: Callable[[bytes], bytes]) -> bytes:
        recorded = self.recorder.answers[0] if self.recorder.answers else b"\x90\x00"
        return ReplayClose(recorded, self.deliver)(index, command, forward)


def _clones_and_swaps(fleet: Fleet) -> Iterator[Case]:
    clone = fleet.card("multi_trip", keys_of="wrong_keys")
    yield Case("clone_wrong_keys", HostileCard(clone), [clone], must_stay_shut=True)
    for profile in ("season_pass", "intercode"):
        other = fleet.card(profile, keys_of="wrong_keys")
        yield Case(f"clone_wrong_keys/{profile}", HostileCard(other), [other], True)
    card = fleet.card("multi_trip")
    fake = bytes.fromhex("00000000DEADBEEF")
    layers: list[Layer] = [
        RewriteAnswers(CardIns.SELECT, fci_serial_rewrite(fake), first=2),
        FailOnce(CardIns.READ_RECORDS),
    ]
    yield Case("serial_rewritten_on_rerun", HostileCard(card, *layers), [card], True)
    card = fleet.card("multi_trip")
    layer = RewriteAnswers(CardIns.SELECT, fci_serial_rewrite(fake))
    yield Case("serial_rewritten", HostileCard(card, layer), [card], True)
    # Another genuine card answers the rerun: it may be granted, on its own serial and value.
    first, second = fleet.card("multi_trip"), fleet.card("season_pass")
    swap = SwapAfterSelect(second, selects=2)
    yield Case(
        "swapped_on_rerun",
        HostileCard(first, swap, FailOnce(CardIns.READ_RECORDS)),
        [first, second],
    )
    # Another genuine card answers from APDU ``at`` on (mid-session), then for the rerun too,
    # or the first card again from the rerun's select on: granted only on what a card holds.
    for at in (3, 4, 6, 8):
        for back in (False, True):
            first, second = fleet.card("multi_trip"), fleet.card("multi_trip", serial=fake)
            swap = SwapAfterSelect(second, selects=99, at_index=at, back=back)
            name = f"swapped_mid_session_at_{at}" + ("_and_back" if back else "")
            yield Case(name, HostileCard(first, swap), [first, second])


def _pki(fleet: Fleet) -> Iterator[Case]:
    """PKI cards whose signature, certificate or chain is wrong: the gate stays shut.

    A forged signature, a certificate for another serial, an unknown CA reference, an expired
    CA, a revoked CA (the bench's revocation list names it), a truncated certificate, a Close
    answered with random bytes or with a signature recorded from an earlier honest tap.
    """
    base = fleet.cards_dir / "multi_trip.yaml"
    seeded = random.Random(fleet.rnd.getrandbits(64))  # noqa: S311
    for name, personalisation in hostile_pki_cards(base, PKI_SERIAL).items():
        card = personalisation.card(random.Random(seeded.getrandbits(64)).randbytes)  # noqa: S311
        yield Case(name, HostileCard(card), [card], must_stay_shut=True)
    # Its card certificate's second part cut short (APDU 3: the card is new to the validator).
    card = fleet.card(PKI_PROFILE)
    truncated = MutateAt(3, Mutation.TRUNCATE, random.Random(3))  # noqa: S311
    yield Case("pki_truncated_certificate", HostileCard(card, truncated), [card], True)
    card = fleet.card(PKI_PROFILE)
    forged = RewriteAnswers(CardIns.CLOSE_SECURE_SESSION, _random_signature(seeded))
    yield Case("pki_random_signature", HostileCard(card, forged), [card], must_stay_shut=True)
    card = fleet.card(PKI_PROFILE)
    recorder = RecordClose()
    replay = _LateReplay(recorder, deliver=True)
    yield Case(
        "pki_replayed_signature",
        HostileCard(card, replay),
        [card],
        must_stay_shut=True,
        prelude=[HostileCard(card, recorder)],
    )


def _random_signature(rnd: random.Random) -> Callable[[bytes], bytes]:
    """A Close answer rewritten to 64 random bytes (and 9000)."""
    return lambda raw: rnd.randbytes(64) + b"\x90\x00"


def _slow(fleet: Fleet, budget_s: float) -> Iterator[Case]:
    slow: list[tuple[str, Slow]] = [
        ("every_apdu", Slow(budget_s / 6)),
        ("select", Slow(budget_s * 1.5, at=1)),
        ("read", Slow(budget_s * 1.5, at=4)),
        ("close", Slow(budget_s * 1.5, at=8)),
    ]
    for name, layer in slow:
        card = fleet.card("multi_trip")
        yield Case(f"slow_{name}", HostileCard(card, layer), [card])


def random_case(fleet: Fleet, rnd: random.Random, apdus: Mapping[str, int], number: int) -> Case:
    """A normal tap with one answer damaged at a random APDU in a random way."""
    profile = rnd.choice(PROFILES)
    card = fleet.card(profile)
    index = rnd.randint(1, apdus[profile])
    how = rnd.choice(list(Mutation))
    mutation = MutateAt(index, how, random.Random(rnd.getrandbits(64)))  # noqa: S311
    return Case(
        f"random#{number}/{profile}/{index}/{how.value}", HostileCard(card, mutation), [card]
    )


def sweep_cases(fleet: Fleet, apdus: Mapping[str, int], seed: int) -> Iterator[Case]:
    """Every APDU of every profile's normal tap, damaged in every way once."""
    rnd = random.Random(seed)  # noqa: S311 - simulation randomness, by design
    for profile in PROFILES:
        for index in range(1, apdus[profile] + 1):
            for how in Mutation:
                card = fleet.card(profile)
                layer = MutateAt(index, how, random.Random(rnd.getrandbits(64)))  # noqa: S311
                yield Case(f"sweep/{profile}/{index}/{how.value}", HostileCard(card, layer), [card])

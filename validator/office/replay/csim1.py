# SPDX-License-Identifier: Apache-2.0
"""CSIM1 session MACs recomputed directly with the software SAM's keys: replay's fast path.

``recompute_session`` (sam.verify) drives the software SAM through its APDUs (Select
Diversifier, Digest Init in verification mode, Digest Update Multiple, Digest Close, Digest
Authenticate): five commands framed, traced and parsed a session, most of a replay's time with
``--keys``. The same CSIM1 computation (calypso.crypto: the key diversified by the card serial,
the session keys, the MAC over the framed items) done here directly gives the same MACs.

It only ever says "verified": a session it does not take as it is (a mutual authentication, an
encrypted part, an item or a key the SAM would refuse, a MAC that does not match) returns None,
and the caller recomputes it through the SAM, whose answer (and note) is the reference. So the
report is the same with or without this path; ``validator.office.replay.mac`` uses it when the
checker holds a software SAM's key file.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from calypso import crypto
from sam.keys import KeySet
from sam.verify import DigestStep, SessionTranscript, TranscriptError, session_transcript

_DIGEST_INIT_DATA = 255  # Lc of Digest Init: KIF, KVC, the terminal challenge, the data-out
DIVERSIFIED_KEYS = 4096  # card keys kept by (KIF, KVC, serial): a card signs several sessions


class DirectVerifier:
    """Checks sessions with the keys of one software SAM (not thread-safe: one per process)."""

    def __init__(self, keys: KeySet, *, max_item: int, extended: bool) -> None:
        """``max_item``: the largest digest item the SAM takes; ``extended``: whether it does
        extended sessions (as its identity says)."""
        self._keys = keys
        self._max_item = max_item
        self._extended = extended
        # Never logged nor raised: the keys stay in this process's memory, as in the SAM's.
        self._card_key = functools.lru_cache(DIVERSIFIED_KEYS)(self._diversify)

    def _diversify(self, kif: int, kvc: int, serial: bytes) -> bytes | None:
        work_key = self._keys.lookup(kif, kvc)
        if work_key is None:
            return None
        return crypto.diversify(work_key.secret(), kif, kvc, serial)

    def verified(self, serial: bytes, exchanges: Sequence[tuple[bytes, bytes]]) -> bool | None:
        """True if the session's terminal and card MACs are the keys' (None: ask the SAM)."""
        if len(serial) != 8:  # the SAM pads a shorter serial to 4 bytes: not this path
            return None
        try:
            transcript = session_transcript(exchanges)
        except TranscriptError:
            return None
        items = self._items(transcript)
        if items is None:
            return None
        card_key = self._card_key(transcript.kif, transcript.kvc, serial)
        if card_key is None:
            return None
        size = 8 if transcript.extended else 4
        sk_mac = crypto.session_mac_key(
            card_key,
            extended=transcript.extended,
            kif=transcript.kif,
            kvc=transcript.kvc,
            card_challenge=transcript.open_data_out[:size],
            terminal_challenge=transcript.terminal_challenge,
        )
        framed = b"".join(bytes((len(item),)) + item for item in items)
        mac = crypto.cmac(sk_mac, framed + bytes((0, crypto.PURPOSE_CLOSE, 0)))
        terminal_ok = crypto.macs_equal(mac[:size], transcript.terminal_mac or b"")
        card_ok = crypto.macs_equal(mac[size : 2 * size], transcript.card_mac or b"")
        return True if terminal_ok and card_ok else None

    def _items(self, transcript: SessionTranscript) -> list[bytes] | None:
        """The digested items (the Open's data-out first), if the SAM would take them all."""
        if transcript.extended and not self._extended:
            return None
        size = 8 if transcript.extended else 4
        data_out = transcript.open_data_out
        if not size <= len(data_out) <= _DIGEST_INIT_DATA - 2 - size:
            return None
        if transcript.terminal_mac is None or len(transcript.terminal_mac) != size:
            return None
        if transcript.card_mac is None or len(transcript.card_mac) != size:
            return None
        items = [data_out]
        for step in transcript.steps:
            if not isinstance(step, DigestStep) or step.encrypted:
                return None
            if not 1 <= len(step.item) <= self._max_item:
                return None
            items.append(step.item)
        return items

# SPDX-License-Identifier: Apache-2.0
"""SecureSession: one Calypso secure session over a card channel and a SessionCrypto.

The engine owns the state: parsers only return values; the engine feeds the session MAC (rule
CL-C4-MAC of calypso-protocol section 0), updates the card image, and cancels the card session
(abort, image restored) unless the Close succeeded and the card MAC verified.

Its parts: session_digest.py (the MAC fed to the SAM, on the SAM worker), prepared_writes.py
(anticipated answers, the writes sent with the Close), multiple_session.py (the buffer
accounting, the intermediate Close and the new session), session_types.py (states, errors).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

from calypso.card_image import CalypsoCard, CardSnapshot
from calypso.commands import CardIns, sv_card_class
from calypso.commands.counters import decrease, increase, parse_increase_decrease
from calypso.commands.records import (
    ReadMode,
    append_record,
    parse_append_record,
    parse_read_records,
    parse_update_record,
    read_records,
    update_record,
)
from calypso.commands.session import (
    OpenSessionData,
    abort_secure_session,
    close_secure_session,
    open_secure_session,
    parse_close_secure_session,
    parse_open_secure_session,
    ratification,
    session_card_class,
)
from calypso.commands.sv import (
    SvGetData,
    parse_sv_get,
    parse_sv_operation,
    sv_debit_partial,
    sv_get,
    sv_operation,
    sv_sam_part,
)
from calypso.commands.sv import SvOperation as CardSvOperation
from calypso.constants import (
    DEFAULT_KIF,
    MAX_COUNTER_VALUE,
    RECORD_SIZE,
    ProductType,
    WriteAccessLevel,
)
from calypso.errors import CardCommandError, CardResponseError, SecurityDataError
from readers.apdu import CommandApdu, ResponseApdu
from readers.base import ReaderError
from readers.channel import ApduChannel
from sam.base import SessionCrypto, SvCrypto, SvOperation, SvRequest
from sam.policy import AuthorizedKeys
from validator.engine.multiple_session import MultipleSession
from validator.engine.prepared_writes import ANSWER_OK, Check, PreparedWrites, unanticipated
from validator.engine.session_buffer import ModificationBuffer
from validator.engine.session_digest import SessionDigest
from validator.engine.session_types import (
    CloseOutcomeUnknownError,
    InvalidCardMacError,
    ModificationBufferOverflowError,
    Ratification,
    SessionError,
    SessionState,
    SessionStateError,
    TerminalMacRejectedError,
)

# The session's names, where callers import them (the types live in session_types.py).
__all__ = [
    "ANSWER_OK",
    "CloseOutcomeUnknownError",
    "InvalidCardMacError",
    "ModificationBufferOverflowError",
    "Ratification",
    "SecureSession",
    "SessionError",
    "SessionState",
    "SessionStateError",
    "TerminalMacRejectedError",
]


class SecureSession:
    """A context manager around one secure session; cancels it unless ``close`` succeeded."""

    def __init__(
        self,
        card: ApduChannel,
        crypto: SessionCrypto,
        image: CalypsoCard,
        *,
        authorized: AuthorizedKeys | None = None,
        payload_capacity: int | None = None,
        new_crypto: Callable[[], SessionCrypto] | None = None,
        extended: bool = False,
        default_kvc: int | None = None,
        overlap: bool = True,
    ) -> None:
        """``new_crypto`` turns on the multiple-session mode: a write that would overflow the
        buffer closes the session (P1=00h, ratified by the Open that follows) and opens a new
        one at the same level first."""
        self.card = card
        self.image = image
        self.authorized = authorized
        self._digest = SessionDigest(crypto, overlap=overlap)
        self.extended = extended
        self.default_kvc = default_kvc
        self.product = image.application.product_type
        self.cla = session_card_class(self.product)
        # Stored-value commands to a Rev1/Rev2 card take class FAh, not 94h (section 0).
        self.sv_cla = sv_card_class(self.product)
        self.legacy = self.product in (ProductType.PRIME_REVISION_1, ProductType.PRIME_REVISION_2)
        # Multiple-mode Read Records exists on Rev3 and Light only (section 1.4).
        self.multiple_read = self.product in (ProductType.PRIME_REVISION_3, ProductType.LIGHT)
        startup = image.application.startup
        self.payload_capacity = min(payload_capacity or 250, startup.payload_capacity)
        self._multiple = MultipleSession(
            ModificationBuffer.for_card(startup, image.application.product_type), new_crypto
        )
        self._sv_get: SvGetData | None = None
        self._sv_pending = False
        self.state = SessionState.IDLE
        self.open_data: OpenSessionData | None = None
        self.mac_verified = False
        self.ratification_sent = False
        self.writes: list[bytes] = []
        self.terminal_mac: bytes | None = None
        self.card_mac: bytes | None = None
        self._snapshot: CardSnapshot | None = None
        # Prepared writes (prepare_writes): sent with the Close, answers anticipated.
        self._prepared = PreparedWrites()
        # Called with the writes so far before each Close that may commit some (the journal's
        # closing intent); what it returns is called just before Close is sent (waits for the
        # intent to be durable). Either may raise: the Close is not sent, the session aborts.
        self.on_close: Callable[[list[bytes]], Callable[[], object]] | None = None

    @property
    def crypto(self) -> SessionCrypto:
        """The current session's crypto (a new one for each session in the multiple mode)."""
        return self._digest.crypto

    @crypto.setter
    def crypto(self, crypto: SessionCrypto) -> None:
        self._digest.crypto = crypto

    @property
    def sessions(self) -> int:
        """How many sessions were opened (more than one in the multiple-session mode)."""
        return self._multiple.sessions

    @property
    def committed_writes(self) -> list[bytes]:
        """Multiple-session mode: the writes of the sessions already closed with a verified MAC."""
        return self._multiple.committed_writes

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.state is SessionState.OPEN:
            self.cancel()
        self._digest.sam.close()

    def open(
        self, level: WriteAccessLevel, *, read: tuple[int, int] | None = None
    ) -> OpenSessionData:
        """Open the session at ``level``, reading one record (SFI, record) in the same command."""
        if self.state not in (SessionState.IDLE, SessionState.CLOSED) or (
            self.state is SessionState.CLOSED and not self._multiple.enabled
        ):
            raise SessionStateError(f"cannot open a session in state {self.state.value}")
        challenge = self.crypto.init_session()
        sfi, record = read if read is not None else (0, 0)
        command = open_secure_session(
            level, challenge, sfi=sfi, record=record, product=self.product, extended=self.extended
        )
        response = self.card.transmit(command)
        data = parse_open_secure_session(
            response, command, product=self.product, extended=self.extended
        )
        self._snapshot = self.image.snapshot()  # each session is atomic on its own
        self.image.transaction_counter = data.transaction_counter
        self.image.ratified = data.ratified
        if read is not None:
            self.image.set_record(sfi, record, data.record_data)
        self.open_data = data
        self.state = SessionState.OPEN
        self._multiple.opened(level)
        kif, kvc = self._resolve_key(level, data)
        if self.authorized is not None:
            self.authorized.check(kif, kvc)  # refused: __exit__ aborts the session
        self._digest.start(data.data_out, kif, kvc)
        return data

    def _resolve_key(self, level: WriteAccessLevel, data: OpenSessionData) -> tuple[int, int]:
        """KIF/KVC of the session key (section 2.1): the card's, else the configured defaults.

        Rev3 cards give both; Rev2.4 gives the KVC only; Rev1 neither (FFh = unknown).
        """
        kif = data.kif if data.kif not in (0x00, 0xFF) else DEFAULT_KIF[level]
        kvc = data.kvc if data.kvc not in (0x00, 0xFF) else self.default_kvc
        if kvc is None:
            raise SessionError("the card gives no KVC and no default KVC is configured")
        return kif, kvc

    def read_records(
        self, sfi: int, record: int, count: int = 1, *, record_size: int = RECORD_SIZE
    ) -> dict[int, bytes]:
        """Read ``count`` records from ``record``: multiple mode, as many per APDU as fit.

        Records per APDU = payload capacity // (record size + 2), the capacity being the
        smaller of the card's and what the SAM can digest (Keyple's rule, section 1.4).
        """
        per_apdu = max(1, self.payload_capacity // (record_size + 2))
        records: dict[int, bytes] = {}
        number, last = record, record + count - 1
        while number <= last:
            batch = min(per_apdu, last - number + 1)
            if batch == 1 or not self.multiple_read:
                command = read_records(sfi, number, le=record_size, cla=self.cla)
                mode = ReadMode.ONE
            else:
                le = min(255, batch * (record_size + 2))
                command = read_records(sfi, number, mode=ReadMode.MULTIPLE, le=le, cla=self.cla)
                mode = ReadMode.MULTIPLE
            response = self._exchange(command)
            got = parse_read_records(response, record=number, mode=mode, command=command)
            self._digest.add(command, response)
            got = {n: data for n, data in got.items() if number <= n <= last}
            if not got:
                break
            records.update(got)
            number = max(got) + 1 if mode is ReadMode.MULTIPLE else number + 1
        if record not in records:
            raise CardResponseError(f"Read Records SFI {sfi:02X}", f"record {record} not returned")
        for number, data in records.items():
            self.image.set_record(sfi, number, data)
        return records

    def read_counters(
        self, sfi: int, *, record_size: int = RECORD_SIZE, count: int | None = None
    ) -> dict[int, int]:
        """Read record 1 of a counters file and return its counters by number; ``count`` reads
        only the first ``count`` counters (Le = 3 x count, as Keyple's prepareReadCounter)."""
        if count is not None and 0 < 3 * count < record_size:
            command = read_records(sfi, 1, le=3 * count, cla=self.cla)
            response = self._exchange(command)
            data = parse_read_records(response, record=1, mode=ReadMode.ONE, command=command)[1]
            self._digest.add(command, response)
            self.image.set_record(sfi, 1, data)
        else:
            data = self.read_records(sfi, 1, record_size=record_size)[1]
        self.image.set_counters_from_record(sfi, data)
        return {n: v for (s, n), v in self.image.counters.items() if s == sfi}

    def update_record(self, sfi: int, record: int, data: bytes) -> None:
        """Update one record inside the session."""
        command = update_record(sfi, record, data, cla=self.cla)
        response = self._exchange(
            command, write=True, anticipated=ANSWER_OK, check=parse_update_record
        )
        parse_update_record(response, command)
        self.image.update_record(sfi, record, data)

    def append_record(self, sfi: int, data: bytes) -> None:
        """Append a record to a cyclic file inside the session."""
        command = append_record(sfi, data, cla=self.cla)
        response = self._exchange(
            command, write=True, anticipated=ANSWER_OK, check=parse_append_record
        )
        parse_append_record(response, command)
        self.image.append_record(sfi, data)

    def decrease(self, sfi: int, counter: int, value: int) -> int:
        """Decrease a counter inside the session; returns the card's new value."""
        return self._count(sfi, counter, value, decreasing=True)

    def increase(self, sfi: int, counter: int, value: int) -> int:
        """Increase a counter inside the session; returns the card's new value."""
        return self._count(sfi, counter, value, decreasing=False)

    def _count(self, sfi: int, counter: int, value: int, *, decreasing: bool) -> int:
        """Increase/Decrease; a Rev1/Rev2 card may postpone the result (6200, section 1.7)."""
        build = decrease if decreasing else increase
        command = build(sfi, counter, value, cla=self.cla, postponable=self.legacy)
        known = self.image.counter(sfi, counter)
        anticipated = None
        if known is not None and not self.legacy:
            expected = known - value if decreasing else known + value
            if 0 <= expected <= MAX_COUNTER_VALUE:
                anticipated = expected.to_bytes(3, "big") + ANSWER_OK
        response = self._exchange(
            command,
            write=True,
            anticipated=anticipated,
            check=lambda r, c: parse_increase_decrease(r, decreasing=decreasing, command=c),
        )
        result = parse_increase_decrease(response, decreasing=decreasing, command=command)
        if anticipated is None:
            self._digest.add(command, response)
        new_value = result.value
        if new_value is None:  # postponed: computed from the value read before
            known = self.image.counter(sfi, counter)
            if known is None:
                raise SessionError("a postponed counter result needs the counter read first")
            new_value = known - value if decreasing else known + value
        self.image.set_counter(sfi, counter, new_value)
        return new_value

    def sv_get(self) -> SvGetData:
        """SV Get for a debit inside the session (digested like any in-session command).

        In an extended session the extended form (`00 7C 01 09 3D`): a Rev3.2 card requires it
        there, and the SV operation that follows carries the 10-byte SV MAC (section 1.19).
        """
        command = sv_get(CardSvOperation.DEBIT, extended=self.extended, cla=self.sv_cla)
        response = self._exchange(command)
        data = parse_sv_get(response, command)
        self._digest.add(command, response)
        self._sv_get = data
        return data

    def sv_debit(self, amount: int, *, date: bytes, time: bytes) -> None:
        """SV Debit inside the session; its signature comes back postponed in the Close answer.

        The SAM prepares the terminal SV MAC from the SV Get just done (SV Prepare Debit); the
        card's SV signature is checked with SV Check after the session MAC (section 2.9).
        """
        if self._sv_get is None:
            raise SessionStateError("SV Debit must follow an SV Get")
        if not isinstance(self.crypto, SvCrypto):
            raise SessionStateError("this SAM cannot prepare SV operations")
        partial = sv_debit_partial(amount, date=date, time=time, kvc=self._sv_get.kvc)
        request = SvRequest(
            SvOperation.DEBIT,
            self._sv_get.header,
            self._sv_get.response,
            sv_sam_part(CardIns.SV_DEBIT, partial, extended=self._sv_get.header[1] == 0x01),
        )
        security = self._digest.sam.call(self.crypto.prepare_sv, request)
        command = sv_operation(
            CardIns.SV_DEBIT,
            partial,
            sam_challenge=security.challenge,
            sam_serial=security.serial,
            sam_tnum=security.transaction_number,
            mac=security.terminal_sv_mac,
            in_session=True,
            cla=self.sv_cla,
        )
        response = self._exchange(command, write=True)
        parse_sv_operation(response, command)
        self._digest.add(command, response)  # not anticipated: 9000 or a postponed 6200
        self._sv_pending = True
        self._sv_get = None  # only one SV operation per session

    def prepare_writes(self) -> None:
        """From now on, only prepare the writes whose answers can be anticipated: digest them at
        once and send them to the card with the Close (Keyple's prepared modifications,
        calypso-protocol 2.4). The SAM then digests them and computes the terminal MAC while
        the card executes them, so Close waits for no SAM exchange. A read, or a write that
        cannot be anticipated, first sends what was prepared."""
        self._require_open()
        self._prepared.start()

    def close(self, ratification_mode: Ratification = Ratification.COMMAND) -> None:
        """Close the session and verify the card MAC with the SAM.

        Raises:
            TerminalMacRejectedError: the card answered 6988 (it rolled back).
            CloseOutcomeUnknownError: the card was lost before answering Close.
            InvalidCardMacError: the card committed but its MAC is wrong (not authentic).
            JournalError: from ``on_close``: the closing intent is not durable, Close not sent.
        """
        self._require_open()
        # DESIGN section 6: the closing intent is written now and made durable while the card
        # executes the prepared writes and the SAM computes the terminal MAC.
        durable = self.on_close(list(self.writes)) if self.on_close and self.writes else None
        terminal_mac = self._prepared.terminal_mac(self.card, self._digest)
        if durable is not None:
            durable()  # on disk before Close is sent, or the session is aborted
        self.terminal_mac = terminal_mac
        command = close_secure_session(
            terminal_mac, ratify_now=ratification_mode is Ratification.IMMEDIATE, cla=self.cla
        )
        self.state = SessionState.CLOSING
        try:
            response = self.card.transmit(command)
        except ReaderError as exc:
            self.state = SessionState.UNKNOWN
            raise CloseOutcomeUnknownError(self.image.transaction_counter) from exc
        try:
            closed = parse_close_secure_session(
                response, mac_size=len(terminal_mac), command=command
            )
        except SecurityDataError as exc:
            self._rolled_back()
            raise TerminalMacRejectedError("the card rejected the terminal MAC") from exc
        except (CardCommandError, CardResponseError) as exc:
            # Any other answer once Close was sent, even a documented refusal, may come from a
            # card that committed: never rerun, journal the writes sent, settle it from the
            # card's event log at its next tap.
            self.state = SessionState.UNKNOWN
            raise CloseOutcomeUnknownError(self.image.transaction_counter) from exc
        self.state = SessionState.CLOSED
        self.card_mac = closed.card_mac
        # Digest Authenticate runs while the card gets its ratification command.
        verified = self._digest.verify_later(closed.card_mac)
        if ratification_mode is Ratification.COMMAND:
            try:
                self.card.transmit(ratification(cla=self.cla))  # its status word is always ignored
                self.ratification_sent = True
            except ReaderError:
                pass  # the card keeps the new data, marked not ratified (DESIGN section 5)
        self._digest.sync()
        if not verified or not verified[0]:
            raise InvalidCardMacError("the SAM rejected the card's session MAC")
        if self._sv_pending:
            self._sv_pending = False
            signature = closed.postponed[0] if closed.postponed else b""
            crypto = self.crypto
            if not isinstance(crypto, SvCrypto) or not self._digest.sam.call(
                crypto.verify_card_sv_mac, signature
            ):
                raise InvalidCardMacError("the SAM rejected the card's postponed SV signature")
        self.mac_verified = True

    def cancel(self) -> None:
        """Abort the card session (best effort) and restore the image taken at Open."""
        if self.state is not SessionState.OPEN:
            return
        try:
            self.card.transmit(abort_secure_session(cla=self.cla))
        except ReaderError:
            pass  # a card that left the field rolls back by itself
        self._digest.sam.drain()
        self._rolled_back()

    def _rolled_back(self) -> None:
        if self._snapshot is not None:
            self.image.restore(self._snapshot)
        self.state = SessionState.ABORTED

    def _require_open(self) -> None:
        if self.state is not SessionState.OPEN:
            raise SessionStateError(f"no open session (state {self.state.value})")

    def _exchange(
        self,
        command: CommandApdu,
        *,
        write: bool = False,
        anticipated: bytes | None = None,
        check: Check | None = None,
    ) -> ResponseApdu:
        """Send one in-session command; a write may have its answer anticipated.

        An anticipated answer (section 2.4: 9000 for a record write, the known new value for a
        counter) is digested with the command before the card gets it, and the SAM digests
        everything so far while the card works: Close then waits for Digest Close only. An
        answer that differs from the anticipated one ends the session (the MACs would not match).
        Once ``prepare_writes`` was called, such a write is only queued for the Close.
        """
        self._require_open()
        raw = bytes(command)
        if write:
            self._multiple.take(self, raw)  # may close this session and open the next one
            self.writes.append(raw)
            if anticipated is not None:
                self._digest.add(raw, anticipated)
                if self._prepared.active and check is not None:
                    return self._prepared.add(command, anticipated, check)
                self._digest.flush()
        self._prepared.send_before(self.card)  # what comes next must see them done
        response = self.card.transmit(command)
        if anticipated is not None and bytes(response) != anticipated:
            if response.ok:
                raise unanticipated(response, anticipated)
            # A refused write raises its typed error in the caller's parser.
        return response

# SPDX-License-Identifier: Apache-2.0
"""The validation procedure (calypso-data-model section 3.5, made layout-neutral).

Select, open a DEBIT session reading the layout's first record in the Open command, let the
card's layout (validator.engine.layouts.base) read what the rules need with the fewest APDUs,
decide with the pure fare rules, then let the layout write and close, or abort.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from calypso.card_image import CalypsoCard
from calypso.commands.select import (
    BPRIME_ATR_LENGTH,
    ApplicationInfo,
    aid_matches,
    parse_bprime_atr,
    parse_select_application,
    select_application,
)
from calypso.constants import WriteAccessLevel
from calypso.errors import (
    ApplicationNotFoundError,
    CardCommandError,
    CardResponseError,
    ClassNotSupportedError,
)
from readers.base import CardConnection, CardRemovedError, Deadlined, ReaderError
from readers.channel import ApduChannel
from sam.base import Sam, SamError
from sam.policy import AuthorizedKeys, UnauthorizedKeyError
from validator.engine.fares import decide as fares
from validator.engine.fares.decide import Decision, FareRules, TapContext, Verdict
from validator.engine.layouts.base import CardLayout, layout_for, read_card
from validator.engine.layouts.demo import DemoLayout
from validator.engine.outcome import Closing, Outcome, TapResult
from validator.engine.pki.session import InvalidCardSignatureError, PkiSecureSession
from validator.engine.pki.trust import CardKey, CardTrust, CertificateRefusedError
from validator.engine.recording import JOURNAL_UNAVAILABLE, JournalError
from validator.engine.session import (
    CloseOutcomeUnknownError,
    InvalidCardMacError,
    ModificationBufferOverflowError,
    Ratification,
    SecureSession,
    SessionError,
    SessionState,
    TerminalMacRejectedError,
)

DEFAULT_LAYOUT = DemoLayout()


class NoApplicationError(Exception):
    """None of the configured AIDs selected a Calypso application on this card."""


class NoSamError(Exception):
    """A validator with no SAM met a card it could only authenticate with one."""


def validate(
    connection: CardConnection,
    sam: Sam | None,
    rules: FareRules,
    context: TapContext,
    *,
    aids: Sequence[bytes],
    ratification: Ratification = Ratification.COMMAND,
    authorized: AuthorizedKeys | None = None,
    multiple_session: bool = False,
    layouts: Mapping[bytes, CardLayout] | None = None,
    overlap: bool = True,
    history: Callable[[bytes], bool] | None = None,
    deadline: float | None = None,
    default_kvc: int | None = None,
    before_close: Callable[[], None] | None = None,
    closing: Callable[[Closing], Callable[[], object]] | None = None,
    pki: CardTrust | None = None,
) -> TapResult:
    """Run one tap end to end and return what happened; never raises for a card's behaviour.

    ``history(serial)`` says whether to read the card's whole event log (the processor wants
    it for a card it has an unknown tap of); by default it is always read. ``deadline``
    (time.monotonic()) cuts a card that is too slow to answer, on connections that can.
    ``default_kvc``: the session key's KVC for a card whose Open answer names none (Prime
    Rev1); without it such a card ends in a session error.
    ``before_close`` (the journal's ``ensure_room``) runs before anything can commit; when it
    raises JournalError the session is aborted: outcome ``error``, reason journal_unavailable.
    ``closing`` (the journal's closing intent) is called before each Close that may commit
    writes, and what it returns just before that Close is sent; a JournalError from either
    aborts the session the same way (DESIGN section 6: nothing commits without its intent).
    ``pki`` (the trusted roots and verified card keys) runs a card that announces PKI mode in
    a PKI session, with no SAM exchange; ``sam`` None: a validator without SAM, which refuses
    the other cards (reason no_sam)."""
    if deadline is not None and isinstance(connection, Deadlined):
        connection.set_deadline(deadline)
    card = ApduChannel(connection, label="card")
    if sam is not None:
        sam.reset_exchanges()  # this tap's exchanges only (the pre-fetch was before it)
    start = time.perf_counter()
    tap = _Tap(
        card,
        sam,
        rules,
        context,
        aids,
        ratification,
        authorized,
        multiple_session,
        layouts,
        overlap,
        history,
        default_kvc,
        before_close,
        closing,
        pki,
    )
    return replace(
        tap.run(),
        elapsed=time.perf_counter() - start,
        card_trace=tuple(card.exchanges),
        sam_trace=tuple(sam.exchanges) if sam is not None else (),
    )


@dataclass
class _Tap:
    """One attempt: what it has learnt so far, so that any exit can report all of it."""

    card: ApduChannel
    sam: Sam | None
    rules: FareRules
    context: TapContext
    aids: Sequence[bytes]
    ratification: Ratification
    authorized: AuthorizedKeys | None = None
    multiple_session: bool = False
    layouts: Mapping[bytes, CardLayout] | None = None
    overlap: bool = True
    history: Callable[[bytes], bool] | None = None
    default_kvc: int | None = None
    before_close: Callable[[], None] | None = None
    closing: Callable[[Closing], Callable[[], object]] | None = None
    pki: CardTrust | None = None
    app: ApplicationInfo | None = None
    session: SecureSession | None = None
    decision: Decision | None = None
    state_read: dict[str, str] | None = None
    layout_name: str | None = None
    card_key: CardKey | None = None  # PKI mode: the card's verified certificate

    def run(self) -> TapResult:
        """Select, authenticate, read, decide, write and close; map every failure to an Outcome."""
        try:
            return self._validate()
        except NoApplicationError as exc:
            return self._finish(Outcome.DENIED, "no_application", str(exc))
        except NoSamError as exc:
            return self._finish(Outcome.DENIED, "no_sam", str(exc))
        except (CertificateRefusedError, InvalidCardSignatureError) as exc:
            # PKI mode: the chain or the card's signature is refused; the gate stays shut.
            if isinstance(exc, InvalidCardSignatureError) and self.pki and self.app:
                self.pki.forget(self.app.serial)  # perhaps a new key: read the certificate again
            return self._finish(Outcome.DENIED, exc.reason, str(exc))
        except CloseOutcomeUnknownError as exc:
            return self._finish(Outcome.UNKNOWN, "close_unanswered", str(exc))
        except JournalError as exc:
            # Raised before any write or Close, inside the session: it was aborted on the way.
            return self._finish(Outcome.ERROR, JOURNAL_UNAVAILABLE, str(exc))
        except TerminalMacRejectedError as exc:
            return self._finish(Outcome.DENIED, "card_not_authentic", str(exc))
        except InvalidCardMacError as exc:
            return self._finish(Outcome.DENIED, "card_mac_invalid", str(exc))
        except CardRemovedError as exc:
            return self._finish(Outcome.CARD_LOST, "card_lost", str(exc))
        except ReaderError as exc:
            return self._finish(Outcome.CARD_LOST, "card_lost", str(exc), retryable=True)
        except UnauthorizedKeyError as exc:
            return self._finish(Outcome.DENIED, "key_not_authorized", str(exc))
        except ModificationBufferOverflowError as exc:
            return self._finish(Outcome.ERROR, "session_buffer_overflow", str(exc))
        except SamError as exc:
            return self._finish(Outcome.ERROR, "sam_error", str(exc))
        except (CardCommandError, CardResponseError) as exc:
            return self._finish(Outcome.ERROR, "card_error", str(exc), retryable=True)
        except SessionError as exc:
            return self._finish(Outcome.ERROR, "session_error", str(exc), retryable=True)

    def _validate(self) -> TapResult:
        self.app = app = self._select()
        if app.invalidated:
            return self._finish(
                Outcome.DENIED, "card_invalidated", "the application is invalidated"
            )
        if self.rules.is_denied(app.serial):
            reason = fares.Reason.DENY_LISTED.value
            return self._finish(Outcome.DENIED, reason, "card serial is on the deny list")
        self.session = session = self._session(app, CalypsoCard(app))
        image = session.image
        if self.closing is not None:
            session.on_close = self._on_close
        layout = layout_for(app.df_name, self.layouts or {}, DEFAULT_LAYOUT)
        self.layout_name = layout.name
        with session:
            opened = session.open(WriteAccessLevel.DEBIT, read=layout.open_read)
            state, early = read_card(
                layout,
                session,
                image,
                opened.record_data,
                self.rules,
                self.context,
                history=self.history(app.serial) if self.history is not None else True,
            )
            self.state_read = {
                f"{sfi:02X}:{number}": data.hex().upper()
                for sfi, records in sorted(image.records.items())
                for number, data in sorted(records.items())
            }
            decision = early or fares.decide(state, self.context, self.rules)
            has_purse = app.startup.has_stored_value and self.card_key is None  # none in PKI
            if early is None and fares.wants_purse(decision, self.rules, has_purse):
                # No contract pays: read the SV purse (one more APDU) and decide again.
                purse = session.sv_get()
                self.state_read["SV"] = purse.response.hex().upper()
                state = dataclasses.replace(state, sv_balance=purse.balance)
                decision = fares.decide(state, self.context, self.rules)
            self.decision = decision
            if decision.verdict is Verdict.DENY:
                session.cancel()
                return self._finish(Outcome.DENIED)
            if self.before_close is not None:
                # DESIGN section 6: a tap that cannot be recorded is not charged. Checked before
                # the first write, since the multiple-session mode commits some writes early.
                self.before_close()
            if decision.verdict is Verdict.GRANT or decision.event is not None:
                if self.overlap:
                    session.prepare_writes()  # sent with the Close while the SAM digests them
                layout.write(session, state, decision)  # a recovery: only its event, if asked
            session.close(self.ratification)
        granted = decision.verdict is Verdict.GRANT
        return self._finish(Outcome.GRANTED if granted else Outcome.RECOVERED)

    def _session(self, app: ApplicationInfo, image: CalypsoCard) -> SecureSession:
        """The card's secure session: in PKI mode when the card announces it and a root is
        trusted (its certificate read or found cached, verified, and no SAM exchange), else
        symmetric over the SAM."""
        if self.pki is not None and app.startup.pki_mode:
            self.card_key = self.pki.card_key(self.card, app, self.context.now.date())
            public_key = self.card_key.verified.public_key
            return PkiSecureSession(self.card, image, public_key, rng=self.pki.rng)
        if self.sam is None:
            kind = "a PKI card, but no root is trusted" if app.startup.pki_mode else "no PKI"
            raise NoSamError(f"this validator has no SAM and the card has {kind}")
        sam, serial = self.sam, app.serial
        extended = app.startup.extended_mode
        try:
            crypto = sam.session_crypto(serial, extended=extended)
        except SamError:
            if not extended:
                raise
            extended = False  # a SAM without extended mode (S1Dx, S1E1): regular session
            crypto = sam.session_crypto(serial)
        return SecureSession(
            self.card,
            crypto,
            image,
            authorized=self.authorized,
            payload_capacity=sam.card_payload_capacity,
            new_crypto=(
                (lambda: sam.session_crypto(serial, extended=extended))
                if self.multiple_session
                else None
            ),
            extended=extended,
            overlap=self.overlap,
            default_kvc=self.default_kvc,
        )

    def _on_close(self, writes: list[bytes]) -> Callable[[], object]:
        """The closing intent of a Close about to commit ``writes`` (SecureSession.on_close)."""
        app, session, closing = self.app, self.session, self.closing
        assert app is not None and session is not None and closing is not None  # noqa: S101
        return closing(
            Closing(
                app.serial,
                session.image.transaction_counter,
                tuple(writes),
                self.decision,
                app.product_type.name,
                app.df_name,
                self.layout_name,
                dict(self.state_read or {}),
            )
        )

    def _select(self) -> ApplicationInfo:
        no_iso_class = False
        for aid in self.aids:
            command = select_application(aid)
            try:
                response = self.card.transmit(command)
            except CardRemovedError:
                raise
            except ReaderError:
                # Before the session: a garbled or mute exchange is retried once.
                response = self.card.transmit(command)
            try:
                info = parse_select_application(response, command)
            except ApplicationNotFoundError:
                continue
            except ClassNotSupportedError:
                no_iso_class = True
                continue
            if aid_matches(aid, info.df_name):
                return info
        atr = self.card.connection.atr
        if no_iso_class and len(atr) == BPRIME_ATR_LENGTH:
            # A Prime Rev1 (B-prime) card knows no Select Application: it is known from its
            # 20-byte ATR (calypso-protocol section 4), as Keyple selects it.
            return parse_bprime_atr(atr)
        raise NoApplicationError("no configured AID on this card")

    def _finish(
        self,
        outcome: Outcome,
        reason: str | None = None,
        explanation: str | None = None,
        *,
        retryable: bool = False,
    ) -> TapResult:
        decision, session, app = self.decision, self.session, self.app
        committed = session is not None and bool(session.committed_writes)
        if (
            committed
            and decision is not None
            and decision.verdict is Verdict.GRANT
            and outcome in (Outcome.CARD_LOST, Outcome.UNKNOWN, Outcome.ERROR)
        ):
            # Multiple-session mode: an earlier session, MAC verified, committed the debit and
            # the event (layouts write them first); only the later writes were lost. The
            # passenger has paid: the gate opens, as after a Close whose ratification was lost.
            outcome, reason, explanation = Outcome.GRANTED, None, None
        if reason is None or explanation is None:
            assert decision is not None  # noqa: S101 - only decided taps omit the reason
            reason, explanation = decision.reason.value, decision.explanation
        debit = 0
        if outcome is Outcome.GRANTED and decision is not None and decision.debit is not None:
            debit = decision.debit.units
        # A failure once Close was sent (unknown) or after the card committed is never rerun.
        retryable = retryable and (
            session is None
            or (session.card_mac is None and session.state is not SessionState.UNKNOWN)
        )
        return TapResult(
            outcome,
            reason,
            explanation,
            serial=app.serial if app is not None else None,
            product=decision.product if decision is not None else None,
            debit=debit,
            remaining=decision.remaining if decision is not None and debit else None,
            mac_verified=session is not None and (session.mac_verified or committed),
            transaction_counter=session.image.transaction_counter if session else None,
            decision=decision,
            writes=tuple(session.writes) if session is not None else (),
            product_type=app.product_type.name if app is not None else None,
            df_name=app.df_name if app is not None else None,
            layout=self.layout_name,
            ratified_seen=session.image.ratified if session is not None else None,
            state_read=dict(self.state_read or {}),
            terminal_mac=session.terminal_mac if session is not None else None,
            card_mac=session.card_mac if session is not None else None,
            retryable=retryable and outcome in (Outcome.CARD_LOST, Outcome.ERROR),
            pki=self.card_key.evidence if self.card_key is not None else None,
        )

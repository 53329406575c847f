# SPDX-License-Identifier: Apache-2.0
"""The validation procedure on the Keyple demo layout (calypso-data-model section 3.5).

Select, open a DEBIT session reading the environment in the Open command, read the event,
the candidate contracts in one Read Records and the counters only when a counter product is
among them, decide with the pure fare rules, then write and close, or abort.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from calypso.card import CalypsoCard
from calypso.commands.select import (
    ApplicationInfo,
    aid_matches,
    parse_select_application,
    select_application,
)
from calypso.constants import WriteAccessLevel
from calypso.errors import CardCommandError, CardResponseError
from calypso.layouts.demo import (
    SFI_CONTRACTS,
    SFI_COUNTERS,
    SFI_ENVIRONMENT,
    SFI_EVENTS,
    Contract,
    Environment,
    Event,
)
from readers.apdu import SW
from readers.base import CardConnection, ReaderError
from readers.channel import ApduChannel
from sam.base import Sam, SamError
from validator import fares
from validator.fares import CardState, Decision, FareRules, TapContext, Verdict
from validator.outcome import Outcome, TapResult
from validator.session import (
    CloseOutcomeUnknownError,
    InvalidCardMacError,
    Ratification,
    SecureSession,
    TerminalMacRejectedError,
)


class NoApplicationError(Exception):
    """None of the configured AIDs selected a Calypso application on this card."""


def validate(
    connection: CardConnection,
    sam: Sam,
    rules: FareRules,
    context: TapContext,
    *,
    aids: Sequence[bytes],
    sam_channel: ApduChannel | None = None,
    ratification: Ratification = Ratification.COMMAND,
) -> TapResult:
    """Run one tap end to end and return what happened; never raises for a card's behaviour."""
    card = ApduChannel(connection, label="card")
    sam_start = len(sam_channel.exchanges) if sam_channel is not None else 0
    start = time.perf_counter()
    result = _run(card, sam, rules, context, aids, ratification)
    result.elapsed = time.perf_counter() - start
    result.card_trace = list(card.exchanges)
    if sam_channel is not None:
        result.sam_trace = list(sam_channel.exchanges[sam_start:])
    return result


def _select(card: ApduChannel, aids: Sequence[bytes]) -> ApplicationInfo:
    for aid in aids:
        command = select_application(aid)
        response = card.transmit(command)
        if response.sw == SW.FILE_NOT_FOUND:
            continue
        info = parse_select_application(response, command)
        if aid_matches(aid, info.df_name):
            return info
    raise NoApplicationError("no configured AID on this card")


def _run(
    card: ApduChannel,
    sam: Sam,
    rules: FareRules,
    context: TapContext,
    aids: Sequence[bytes],
    ratification: Ratification,
) -> TapResult:
    serial: bytes | None = None
    session: SecureSession | None = None
    decision: Decision | None = None
    try:
        app = _select(card, aids)
        serial = app.serial
        if app.invalidated:
            return TapResult(
                Outcome.DENIED, "card_invalidated", "the application is invalidated", serial=serial
            )
        if rules.is_denied(serial):
            return TapResult(
                Outcome.DENIED,
                fares.Reason.DENY_LISTED.value,
                "card serial is on the deny list",
                serial=serial,
            )
        image = CalypsoCard(app)
        session = SecureSession(card, sam.session_crypto(serial), image)
        with session:
            opened = session.open(WriteAccessLevel.DEBIT, read=(SFI_ENVIRONMENT, 1))
            state = _read_state(session, image, opened.record_data, rules)
            decision = fares.decide(state, context, rules)
            if decision.verdict is Verdict.DENY:
                session.cancel()
                return _result(Outcome.DENIED, decision, serial, session)
            if decision.verdict is Verdict.GRANT:
                if decision.debit is not None:
                    session.decrease(SFI_COUNTERS, decision.debit.counter, decision.debit.units)
                if decision.event is not None:
                    session.append_record(SFI_EVENTS, decision.event.encode())
            session.close(ratification)
        outcome = Outcome.GRANTED if decision.verdict is Verdict.GRANT else Outcome.RECOVERED
        return _result(outcome, decision, serial, session)
    except NoApplicationError as exc:
        return TapResult(Outcome.DENIED, "no_application", str(exc), serial=serial)
    except CloseOutcomeUnknownError as exc:
        return _failure(Outcome.UNKNOWN, "close_unanswered", str(exc), serial, session, decision)
    except TerminalMacRejectedError as exc:
        return _failure(Outcome.DENIED, "card_not_authentic", str(exc), serial, session, decision)
    except InvalidCardMacError as exc:
        return _failure(Outcome.DENIED, "card_mac_invalid", str(exc), serial, session, decision)
    except ReaderError as exc:
        return _failure(Outcome.CARD_LOST, "card_lost", str(exc), serial, session, decision)
    except SamError as exc:
        return _failure(Outcome.ERROR, "sam_error", str(exc), serial, session, decision)
    except (CardCommandError, CardResponseError) as exc:
        return _failure(Outcome.ERROR, "card_error", str(exc), serial, session, decision)


def _read_state(
    session: SecureSession, image: CalypsoCard, env_record: bytes, rules: FareRules
) -> CardState:
    """Read what the rules need with as few APDUs as the card allows."""
    environment = Environment.decode(env_record)
    event_record = session.read_records(SFI_EVENTS, 1)[1]
    event = Event.decode(event_record)
    contracts: dict[int, Contract] = {}
    counters: dict[int, int] = {}
    environment_usable = environment.version == 1
    wanted = fares.candidate_contracts(event) if environment_usable else []
    if wanted:
        first, last = min(wanted), max(wanted)
        records = session.read_records(SFI_CONTRACTS, first, count=last - first + 1)
        contracts = {n: Contract.decode(records[n]) for n in wanted if n in records}
        if fares.needs_counters(contracts, rules):
            counters = session.read_counters(SFI_COUNTERS)
    return CardState(
        serial=image.serial,
        environment=environment,
        event=event,
        contracts=contracts,
        counters=counters,
        ratified=image.ratified is not False,
    )


def _result(
    outcome: Outcome, decision: Decision, serial: bytes, session: SecureSession
) -> TapResult:
    debit = decision.debit.units if decision.debit is not None and outcome is Outcome.GRANTED else 0
    return TapResult(
        outcome,
        decision.reason.value,
        decision.explanation,
        serial=serial,
        product=decision.product,
        debit=debit,
        remaining=decision.remaining,
        mac_verified=session.mac_verified,
        transaction_counter=session.image.transaction_counter,
        decision=decision,
        writes=list(session.writes),
    )


def _failure(
    outcome: Outcome,
    reason: str,
    explanation: str,
    serial: bytes | None,
    session: SecureSession | None,
    decision: Decision | None,
) -> TapResult:
    return TapResult(
        outcome,
        reason,
        explanation,
        serial=serial,
        product=decision.product if decision is not None else None,
        mac_verified=False,
        transaction_counter=session.image.transaction_counter if session is not None else None,
        decision=decision,
        writes=list(session.writes) if session is not None else [],
    )

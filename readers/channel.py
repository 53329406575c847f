# SPDX-License-Identifier: Apache-2.0
"""ApduChannel: the one place that sends APDUs and follows 61xx/6Cxx.

``transmit`` never raises on a status word: each command's parser (``calypso.commands``,
``sam.commands``) is the one place that maps its status words to a typed ApduError.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from readers.apdu import SW, CommandApdu, ResponseApdu
from readers.base import CardConnection
from readers.trace import Exchange

TRAFFIC = 5
logging.addLevelName(TRAFFIC, "TRAFFIC")
logger = logging.getLogger(__name__)

_GET_RESPONSE_INS = 0xC0
_MAX_CHAINED_RESPONSES = 16


class ApduChannel:
    """Sends commands over a connection and keeps the timed exchange list (the audit trail).

    T=0 behaviour is handled here, once for every transport: SW 61xx is followed by Get
    Response (data concatenated), SW 6Cxx with no data by the same command with Le = xx, and a
    case-4 command answered 9000 with no data by Get Response with the command's Le (Keyple's
    reader layer, calypso-protocol section 0). Get Response is always class 00h, whatever the
    class of the command it completes (94h, FAh, 80h...).
    """

    def __init__(self, connection: CardConnection, *, label: str = "card") -> None:
        self.connection = connection
        self.label = label
        self._exchanges: list[Exchange] = []

    @property
    def exchanges(self) -> Sequence[Exchange]:
        """Every physical exchange so far, in order (Get Response included)."""
        return tuple(self._exchanges)

    @property
    def apdu_count(self) -> int:
        """How many APDUs were physically sent."""
        return len(self._exchanges)

    def reset_trace(self) -> None:
        """Forget the exchange list (start of a new tap)."""
        self._exchanges.clear()

    def transmit(self, command: CommandApdu, *, secret: bool = False) -> ResponseApdu:
        """Send one command with 61xx/6Cxx handling; returns whatever status word came back.

        ``secret``: the command's data (a PIN, unlock data) is blanked in the exchange list,
        the TRAFFIC log and errors; only its length shows.
        """
        response = self._raw(command, secret)
        if response.sw1 == 0x6C and not response.data:
            command = CommandApdu(
                command.cla, command.ins, command.p1, command.p2, command.data, le=response.sw2
            )
            response = self._raw(command, secret)
        if (
            response.sw == SW.OK
            and not response.data
            and command.data
            and command.le is not None
            and command.ins != _GET_RESPONSE_INS
        ):
            # Case 4 answered 9000 with no data: the data waits for Get Response (section 0).
            response = self._raw(_get_response(command.le))
        data = response.data
        for _ in range(_MAX_CHAINED_RESPONSES):
            if response.sw1 != 0x61:
                break
            response = self._raw(_get_response(response.sw2))
            data += response.data
        if data is not response.data:
            response = ResponseApdu(data, response.sw)
        return response

    def _raw(self, command: CommandApdu, secret: bool = False) -> ResponseApdu:
        sent = bytes(command)
        raw = bytes(redacted(command)) if secret else sent
        start = time.perf_counter()
        try:
            response = self.connection.transmit(sent)
        except Exception:
            elapsed = time.perf_counter() - start
            self._exchanges.append(Exchange(self.label, raw, b"", elapsed))
            logger.log(
                TRAFFIC, "%s > %s  (no answer, %.2f ms)", self.label, raw.hex(), elapsed * 1e3
            )
            raise
        elapsed = time.perf_counter() - start
        self._exchanges.append(Exchange(self.label, raw, bytes(response), elapsed))
        if logger.isEnabledFor(TRAFFIC):
            logger.log(
                TRAFFIC,
                "%s > %s < %s (%.2f ms)",
                self.label,
                raw.hex().upper(),
                bytes(response).hex().upper(),
                elapsed * 1e3,
            )
        return response


def _get_response(le: int) -> CommandApdu:
    """Get Response `00 C0 00 00 Le`: class 00h always (ISO 7816-4, calypso-protocol section 0)."""
    return CommandApdu(0x00, _GET_RESPONSE_INS, 0x00, 0x00, le=le)


def redacted(command: CommandApdu) -> CommandApdu:
    """The command with its data blanked (same length): what logs and traces may keep."""
    return CommandApdu(
        command.cla, command.ins, command.p1, command.p2, bytes(len(command.data)), command.le
    )

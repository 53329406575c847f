# SPDX-License-Identifier: Apache-2.0
"""Typed errors for card commands: a status-word refusal, or a malformed answer."""

from __future__ import annotations

from readers.apdu import ApduError, CommandApdu, ResponseApdu


class CardCommandError(ApduError):
    """A card command answered with a status word other than success."""

    def __init__(self, ref: str, response: ResponseApdu, command: CommandApdu | None = None):
        super().__init__(response, command)
        self.ref = ref
        self.args = (f"{ref}: {self.args[0]}",)


class IllegalParameterError(CardCommandError):
    """6700, 6B00, 6A81, 6A86, 6A87: the card refused the command's parameters."""


class DataAccessError(CardCommandError):
    """6981, 6986, 6A82, 6A83: no such file or record, or a command that does not fit the file."""


class ApplicationNotFoundError(DataAccessError):
    """6A82 to Select Application: no application with this AID on the card."""


class RecordNotFoundError(DataAccessError):
    """6A83: no record of this number in the file (past the last one)."""


class ClassNotSupportedError(CardCommandError):
    """6E00: the card does not know this CLA (a Prime Rev1 card knows no ISO Select Application)."""


class SecurityContextError(CardCommandError):
    """6982: security conditions not fulfilled (no session, wrong key level, PIN not presented)."""


class AccessForbiddenError(CardCommandError):
    """6985: access forbidden (never condition, session state, invalidated DF)."""


class SecurityDataError(CardCommandError):
    """6988: the card rejected a MAC, signature or cryptogram."""


class SessionBufferOverflowError(CardCommandError):
    """6400: too many modifications in the session."""


class CardTerminatedError(CardCommandError):
    """6900: the transaction counter is exhausted."""


class DataOutOfBoundsError(CardCommandError):
    """6A80: the result would leave the allowed range (counter overflow or underflow)."""


class PinError(CardCommandError):
    """63C2, 63C1, 6983: wrong PIN (attempts left) or PIN blocked."""

    @property
    def attempts_remaining(self) -> int:
        """Attempts left after this refusal: 2 (63C2), 1 (63C1), 0 (6983, blocked)."""
        return {0x63C2: 2, 0x63C1: 1}.get(self.sw, 0)


class FunctionAbsentError(CardCommandError):
    """6D00: the card has no such function (PIN, stored value, extended mode...)."""


class UnknownStatusError(CardCommandError):
    """A status word this command's table does not list."""


class CardResponseError(Exception):
    """The card answered success but the data does not have the shape the command requires."""

    def __init__(self, ref: str, message: str, response: ResponseApdu | None = None) -> None:
        super().__init__(f"{ref}: {message}")
        self.ref = ref
        self.response = response


class UnexpectedResponseLengthError(CardResponseError):
    """The answer's length is not one the command allows."""

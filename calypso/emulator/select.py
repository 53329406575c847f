# SPDX-License-Identifier: Apache-2.0
"""Emulator: Select Application and Select File in the forms real cards accept (calypso-protocol
1.10, 4; ISO 7816-4 5.3.1), and the two-level file tree they navigate: the MF with its own EFs
(ICC, ID) and the application DF with the profile's EFs.

Select File (data: LIDs, 2 bytes each):

* P1 00h: MF, DF or EF by LID (the current DF's EFs, the DF itself, the MF's EFs); no data or
  3F00h selects the MF.
* P1 01h: the DF, from the MF. P1 02h: an EF of the current DF (Rev2's form by LID).
* P1 08h: a path from the MF (``2000 2010``), or a LID alone (Rev1's form).
* P1 09h: a path from the current DF (Rev3's form by LID); ``0000`` is the current DF.
* P1 02h with ``0000``: the first EF (P2 00h) or the next one (P2 02h), as before.
* P2 00h answers tag 85h (the Calypso proprietary information), 04h the same inside an FCP
  template 62h, 0Ch no data.

The DF's EFs are also reachable by SFI whatever is selected (the terminal flows read them right
after Select Application); the MF's EFs by SFI only when the MF is the current DF, and as the
current EF (SFI 0) once selected.
"""

from __future__ import annotations

from calypso.constants import ProductType
from calypso.emulator.files import ElementaryFile, FileStore, master_files
from calypso.emulator.state import CardCore, StatusError
from readers.apdu import SW, CommandApdu, ResponseApdu

MF_LID = 0x3F00
P2_FCI, P2_NEXT, P2_FCP, P2_NO_DATA = 0x00, 0x02, 0x04, 0x0C


def tlv(tag: bytes, value: bytes) -> bytes:
    """A BER-TLV with a one-byte length."""
    return tag + bytes((len(value),)) + value


class FileSelector:
    """What is selected beyond the DF's current EF: the MF as current DF, an MF-level EF."""

    def __init__(self, card: CardCore) -> None:
        self.card = card
        self.mf_files = FileStore(master_files(card.profile))
        self.in_mf = False
        self.mf_ef: ElementaryFile | None = None
        self.df_name = card.profile.aid

    def reset(self) -> None:
        """Reset or deselection: the application DF is current again (no EF)."""
        self.in_mf = False
        self.mf_ef = None

    def is_mf_file(self, ef: ElementaryFile) -> bool:
        """Whether this EF is one of the MF's (its records are static)."""
        return any(ef is f for f in self.mf_files.all())

    def resolve(self, sfi: int) -> ElementaryFile | None:
        """The MF-level EF an SFI names now (0: the current one), or None for the DF's rules."""
        if sfi == 0 and self.mf_ef is not None:
            return self.mf_ef
        if sfi != 0 and self.in_mf:
            ef = self.mf_files.get(sfi)
            if ef is None:
                raise StatusError(SW.FILE_NOT_FOUND)
            self.mf_ef = ef
            return ef
        return None

    # --- Select Application ---------------------------------------------------------------------

    def fci(self) -> bytes:
        """6F { 84 <DF name>, A5 { BF0C { C7 <serial 8>, 53 <startup info 7> } } } (section 4)."""
        card = self.card
        proprietary = tlv(b"\xc7", card.profile.serial) + tlv(b"\x53", card.profile.startup_info)
        body = tlv(b"\x84", self.df_name) + tlv(b"\xa5", tlv(b"\xbf\x0c", proprietary))
        return tlv(b"\x6f", body)

    def select_application(self, command: CommandApdu) -> ResponseApdu:
        """Select Application by DF name or its first bytes (ISO 7816-4 partial DF name)."""
        card = self.card
        if card.product is ProductType.PRIME_REVISION_1:
            raise StatusError(SW.INS_NOT_SUPPORTED)  # B-prime: no application selection
        if not 5 <= len(command.data) <= 16:
            raise StatusError(SW.WRONG_LENGTH)
        card.lose_volatile_state()  # selecting the application ends any session
        names = (card.profile.aid, *card.profile.df_names)
        match = next((name for name in names if name.startswith(command.data)), None)
        if match is None:
            raise StatusError(SW.FILE_NOT_FOUND)
        self.df_name = match
        sw = SW.DF_INVALIDATED if card.invalidated else SW.OK
        if command.p2 == P2_NO_DATA:
            return ResponseApdu(b"", sw)
        if command.p2 == P2_NEXT:  # next occurrence: the card holds one application
            raise StatusError(SW.FILE_NOT_FOUND)
        if command.p2 != P2_FCI:
            raise StatusError(SW.WRONG_P1_P2)
        return ResponseApdu(self.fci(), sw)

    # --- headers --------------------------------------------------------------------------------

    def df_header(self, *, master: bool = False) -> bytes:
        """Tag 85 body of the DF (type 02h) or the MF (01h): status, KVCs, KIFs, LID (1.10)."""
        card = self.card
        slots = [card.key_slot(i) for i in (1, 2, 3)]
        kind = 0x01 if master else 0x02
        body = bytes((0x00, kind, 0x00, 0x00, 0x00)) + bytes(8) + bytes((card.invalidated,))
        body += bytes(s[1] for s in slots) + bytes(s[0] for s in slots)
        lid = (MF_LID if master else card.profile.df_lid).to_bytes(2, "big")
        return (body.ljust(20 if card.legacy else 21, b"\x00") + lid).ljust(23, b"\x00")

    def current_header(self) -> bytes:
        """Tag 85 body of the current file (Get Data FCP)."""
        if self.mf_ef is not None:
            return self.mf_ef.header(legacy=False)
        if self.card.current_sfi is None:
            return self.df_header(master=self.in_mf)
        return self.card.file(0).header(legacy=False)

    # --- Select File ----------------------------------------------------------------------------

    def select_file(self, command: CommandApdu) -> ResponseApdu:
        """Select File in the ISO forms of the module docstring; 6B00 for any other P1/P2."""
        data, p1, p2 = command.data, command.p1, command.p2
        if len(data) % 2 or (not data and p1 != 0x00):
            raise StatusError(SW.WRONG_LENGTH)
        path = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        if p1 == 0x02 and path == [0] and p2 in (0x00, P2_NEXT):
            return self._answer(self._navigate(next_one=p2 == P2_NEXT), P2_FCI)
        if p2 not in (P2_FCI, P2_FCP, P2_NO_DATA):
            raise StatusError(SW.WRONG_P1_P2)
        if p1 == 0x09 and path == [0]:  # the current DF itself
            target: ElementaryFile | str | None = "MF" if self.in_mf else "DF"
        elif p1 == 0x00 and len(path) <= 1:
            target = self._by_lid(path[0] if path else MF_LID)
        elif p1 == 0x01 and len(path) == 1:
            target = "DF" if path[0] == self.card.profile.df_lid and self.in_mf else None
        elif p1 == 0x02 and len(path) == 1:
            target = self._child_ef(path[0])
        elif p1 == 0x08:
            target = self._from_mf(path)
        elif p1 == 0x09:
            target = self._from_current(path)
        else:
            raise StatusError(SW.WRONG_P1_P2)
        if target is None:
            raise StatusError(SW.FILE_NOT_FOUND)
        return self._answer(target, p2)

    def _child_ef(self, lid: int) -> ElementaryFile | None:
        store = self.mf_files if self.in_mf else self.card.files
        return store.by_lid(lid)

    def _by_lid(self, lid: int) -> ElementaryFile | str | None:
        """P1 00h: the MF, the DF, an EF of the current DF, or an EF of the MF (its parent)."""
        if lid == MF_LID:
            return "MF"
        if lid == self.card.profile.df_lid:
            return "DF"
        return self._child_ef(lid) or self.mf_files.by_lid(lid)

    def _from_mf(self, path: list[int]) -> ElementaryFile | str | None:
        if path and path[0] == MF_LID:
            path = path[1:]
        df_lid = self.card.profile.df_lid
        if not path:
            return "MF"
        if path == [df_lid]:
            return "DF"
        if len(path) == 2 and path[0] == df_lid:
            return self.card.files.by_lid(path[1])
        if len(path) == 1:
            # An MF-level EF, or Rev1's Select File by LID (P1 08h, data = the EF's LID).
            return self.mf_files.by_lid(path[0]) or self.card.files.by_lid(path[0])
        return None

    def _from_current(self, path: list[int]) -> ElementaryFile | str | None:
        df_lid = self.card.profile.df_lid
        if path[0] == df_lid:  # the DF from the MF; Rev3 terminals also name the DF itself
            if len(path) == 1:
                return "DF"
            return self.card.files.by_lid(path[1]) if len(path) == 2 else None
        return self._child_ef(path[0]) if len(path) == 1 else None

    def _navigate(self, *, next_one: bool) -> ElementaryFile | None:
        """The first EF of the DF, or the one after the current EF (P1 02h, data 0000h)."""
        current = self.card.current_sfi if next_one else None
        return self.card.files.next_after(current)

    def _answer(self, target: ElementaryFile | str | None, p2: int) -> ResponseApdu:
        card = self.card
        if target is None:
            raise StatusError(SW.FILE_NOT_FOUND)
        card.current_sfi = None
        self.mf_ef = None
        if target in ("MF", "DF"):
            self.in_mf = target == "MF"
            header = self.df_header(master=self.in_mf)
        elif isinstance(target, ElementaryFile) and self.is_mf_file(target):
            self.in_mf, self.mf_ef = True, target
            header = target.header(legacy=card.legacy)
        else:
            assert isinstance(target, ElementaryFile)  # noqa: S101 - narrowed for mypy
            self.in_mf = False
            card.current_sfi = target.sfi
            header = target.header(legacy=card.legacy)
        if p2 == P2_NO_DATA:
            return ResponseApdu(b"", SW.OK)
        answer = b"\x85\x17" + header
        return ResponseApdu(tlv(b"\x62", answer) if p2 == P2_FCP else answer, SW.OK)

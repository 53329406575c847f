# SPDX-License-Identifier: Apache-2.0
"""Calypso card protocol: APDU builders and pure parsers, card image, CSIM1 crypto, card emulator.

This package does no I/O of its own: it builds and parses bytes, and the emulator answers bytes.
"""

# SPDX-License-Identifier: Apache-2.0
"""The Calypso card emulator: an ApduHandler answering card APDUs."""

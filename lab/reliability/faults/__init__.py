# SPDX-License-Identifier: Apache-2.0
"""Faults of the host: crashes, pcscd and SAM loss, full disks, clock steps."""

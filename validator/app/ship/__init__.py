# SPDX-License-Identifier: Apache-2.0
"""Shipping journals to the collector with acknowledgement (``validator ship``, issue 20)."""

# SPDX-License-Identifier: Apache-2.0
"""Data layouts of transport records: pure decoders and encoders, no I/O."""

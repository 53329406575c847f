# SPDX-License-Identifier: Apache-2.0
"""Layout adapters: a card's records <-> the ticketing model."""

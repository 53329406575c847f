# SPDX-License-Identifier: Apache-2.0
"""The ticketing model: a card's titles, last validations and environment, in neutral terms."""

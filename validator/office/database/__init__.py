# SPDX-License-Identifier: Apache-2.0
"""The back-office database: PostgreSQL tables of every validator's journal, and ingestion."""

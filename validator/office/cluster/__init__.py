# SPDX-License-Identifier: Apache-2.0
"""Replay and export on a Dask cluster (issue 21): the same reports as in-process, on many cores.

Each validator's journal chain is one task (integrity, MACs, decisions: validator.office.cluster
.tasks); the facts reconciliation needs are shuffled by card into partitions, each reconciled in
the merge order of the single-process replay; the driver merges everything into the very
``ReplayReport`` the in-process replay builds (validator.office.cluster.merge). Journals are read
where the workers are: local paths, fsspec URLs (``s3://``), or the office database
(validator.office.cluster.sources). Keys travel as file paths, never as bytes.
"""

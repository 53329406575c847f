# SPDX-License-Identifier: Apache-2.0
"""The validator application: secure-session engine, validation procedure, fare rules, CLI."""

# SPDX-License-Identifier: Apache-2.0
"""Test labs outside the installed package: the reliability campaign, a private pcscd."""

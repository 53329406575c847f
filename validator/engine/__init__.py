# SPDX-License-Identifier: Apache-2.0
"""One tap: the tap, its attempts, the secure session, the SAM worker."""

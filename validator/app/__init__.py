# SPDX-License-Identifier: Apache-2.0
"""The running application: settings, run loop, gate, logs, metrics."""

# SPDX-License-Identifier: Apache-2.0
"""The simulated network day (validator.bench.network_day): its plan, simulation, writing,
replay benchmark and replay profile."""

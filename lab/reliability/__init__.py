# SPDX-License-Identifier: Apache-2.0
"""The reliability and security campaign: tearing, hostile cards, fuzzing, crashes, faults, soak.

``python -m lab.reliability [--quick]`` (``make reliability [QUICK=1]``) runs every part and prints
one table ending with ``violations: N``. Each part is a module with ``NAME`` and
``run(level, workdir, log) -> PartResult``; the default test run calls every part at
``Level.SMOKE`` (tests/reliability/).
"""

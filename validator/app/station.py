# SPDX-License-Identifier: Apache-2.0
"""A station's tap engine built from validator.yaml: the one place settings become a processor.

``run``, ``demo``, ``doctor`` and the reliability lab all build their TapProcessor here, so
that the AIDs, ratification mode, time budget, authorised keys, multiple session and card
layouts are those of the settings everywhere (the engine below never reads settings itself).
"""

from __future__ import annotations

from sam.base import Sam
from validator.app.settings import ValidatorSettings
from validator.engine.fares.decide import FareRules
from validator.engine.layouts.base import build_layouts
from validator.engine.recording import TapRecorder
from validator.engine.session import Ratification
from validator.engine.tap import TapProcessor

__all__ = ["build_processor"]


def build_processor(
    settings: ValidatorSettings,
    sam: Sam,
    rules: FareRules,
    journal: TapRecorder | None,
) -> TapProcessor:
    """The tap processor configured by ``settings`` over this SAM, fare rules and journal."""
    return TapProcessor(
        sam=sam,
        rules=rules,
        aids=settings.aid_bytes(),
        validator_id=settings.validator_id,
        journal=journal,
        ratification=Ratification(settings.ratification),
        budget_s=settings.time_budget_ms / 1000,
        authorized=settings.key_policy(),
        multiple_session=settings.multiple_session,
        layouts=build_layouts(settings.layouts),
    )

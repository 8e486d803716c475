"""Reads → store facts: pure, deterministic, clock injected (see ``docs/gateway.md``)."""

from gateway.pipeline.core import SNAPSHOT_VERSION, Pipeline, PipelineStats, no_epc_info, sgtin_info
from gateway.pipeline.identity import DeviceIdentity, Identity, SaltSource
from gateway.pipeline.items import Placement
from gateway.pipeline.journal import fold_facts
from gateway.pipeline.rules import ItemRules, PipelineRules, ShopperRules

__all__ = [
    "SNAPSHOT_VERSION",
    "DeviceIdentity",
    "Identity",
    "ItemRules",
    "Pipeline",
    "PipelineRules",
    "PipelineStats",
    "Placement",
    "SaltSource",
    "ShopperRules",
    "fold_facts",
    "no_epc_info",
    "sgtin_info",
]

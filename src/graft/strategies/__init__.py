"""Strategies: each is a plan, a list of stages over the backbone's layer groups."""

from graft.strategies import (  # noqa: F401  (registers them; auto is the advisor)
    auto,
    feature_extraction,
    fine_tune,
    progressive,
    two_stage,
)
from graft.strategies.base import STRATEGIES, Plan, Stage, Strategy, create_strategy

__all__ = ["STRATEGIES", "Plan", "Stage", "Strategy", "create_strategy"]

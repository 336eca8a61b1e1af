"""Strategies: each is a plan, a list of stages over the backbone's layer groups."""

from graft.strategies import feature_extraction, fine_tune, progressive, two_stage  # noqa: F401
from graft.strategies.base import STRATEGIES, Plan, Stage, Strategy, create_strategy

__all__ = ["STRATEGIES", "Plan", "Stage", "Strategy", "create_strategy"]

"""Ordered layer groups (input side first) for freezing by depth and per-group learning rates.

Groups come from timm's ``group_matcher(coarse=True)`` (stem, one group per stage, final
conv/norm). The original classifier is in no group: it belongs to the source task, and graft's
own head is added after the backbone's groups. Models without a usable matcher fall back to one
group per top-level child module.
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from graft.backbones.base import LayerGroup

# timm's MATCH_PREV_GROUP ordinal folds the final conv/norm into the last stage; a slightly
# smaller ordinal still sorts after every stage but keeps those layers a group of their own.
_MERGE_ORDINAL = (99999,)
_OWN_GROUP_ORDINAL = (99998,)


def classifier_param_names(model: nn.Module) -> set[str]:
    """Parameter names of the original classifier named in timm's ``pretrained_cfg``."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    heads = cfg.get("classifier") or ()
    prefixes = (heads,) if isinstance(heads, str) else tuple(heads)
    names = set()
    for name, _ in model.named_parameters():
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            names.add(name)
    return names


def layer_groups(model: nn.Module) -> list[LayerGroup]:
    """Ordered layer groups of a timm model, input side first, classifier excluded.

    Every parameter that is not the original classifier's is in exactly one group.

    Args:
        model: a timm model (or any module; without ``group_matcher`` one group per child).
    """
    excluded = classifier_param_names(model)
    groups = _matcher_groups(model, excluded)
    if groups is None or len(groups) < 2:
        groups = _child_groups(model, excluded)
    return _name_groups(groups)


def _matcher_groups(model: nn.Module, excluded: set[str]) -> list[list[str]] | None:
    from timm.models import group_parameters

    matcher_fn = getattr(model, "group_matcher", None)
    if not callable(matcher_fn):
        return None
    try:
        matcher = _split_final(matcher_fn(coarse=True))
        grouped = group_parameters(model, matcher)
    except (NotImplementedError, TypeError, AttributeError, ValueError):
        return None
    groups = [[n for n in names if n not in excluded] for _, names in sorted(grouped.items())]
    return [g for g in groups if g]


def _split_final(matcher: Any) -> Any:
    if not isinstance(matcher, dict):
        return matcher
    out: dict[str, Any] = {}
    for key, spec in matcher.items():
        if isinstance(spec, (list, tuple)):
            spec = [
                (pat, _OWN_GROUP_ORDINAL if tuple(suffix or ()) == _MERGE_ORDINAL else suffix)
                for pat, suffix in spec
            ]
        out[key] = spec
    return out


def _child_groups(model: nn.Module, excluded: set[str]) -> list[list[str]]:
    # Top-level children in registration order; direct parameters (e.g. a class token) go
    # with the child whose name they share, else form their own group in order of appearance.
    by_child: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        if name not in excluded:
            by_child.setdefault(name.split(".", 1)[0], []).append(name)
    return list(by_child.values())


def _name_groups(groups: list[list[str]]) -> list[LayerGroup]:
    names: list[str] = []
    for i, params in enumerate(groups):
        name = _common_stage(params)
        if name is None:
            tops = list(dict.fromkeys(p.split(".", 1)[0] for p in params))
            if i == 0 and len(groups) > 1:
                name = "stem"
            elif i == len(groups) - 1 and len(groups) > 1:
                name = "final"
            else:
                name = "+".join(tops)
        while name in names:
            name += "_"
        names.append(name)
    return [LayerGroup(n, tuple(p)) for n, p in zip(names, groups, strict=True)]


def _common_stage(params: list[str]) -> str | None:
    """``blocks.3`` / ``layer2`` / ``stages.0`` when all parameters share that stage."""
    stages = set()
    for p in params:
        parts = p.split(".")
        if re.search(r"\d$", parts[0]):
            stages.add(parts[0])
        elif len(parts) > 2 and parts[1].isdigit():
            stages.add(f"{parts[0]}.{parts[1]}")
        else:
            return None
    return stages.pop() if len(stages) == 1 else None

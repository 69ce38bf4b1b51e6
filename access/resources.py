"""Resource type names used by permissions, and the model behind each."""

RESOURCE_TYPES = [
    "project",
    "entity",
    "data_source",
    "feature_view",
    "on_demand_feature_view",
    "feature_service",
    "saved_dataset",
    "permission",
]

# Feast's Permission type names (FEATURE_VIEW, FeatureView) are accepted too.
_ALIASES = {t.replace("_", ""): t for t in RESOURCE_TYPES}


def normalize_resource_type(raw: str) -> str:
    """`FEATURE_VIEW`, `FeatureView` and `feature_view` all name one type; ValueError otherwise."""
    key = str(raw).strip().replace("_", "").replace("-", "").lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown resource type {raw!r} (expected one of {', '.join(RESOURCE_TYPES)})")
    return _ALIASES[key]

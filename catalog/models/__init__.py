"""The registry: one module per noun."""

from .base import RegistryObject
from .changes import RegistryChange
from .datasets import SavedDataset
from .entities import Entity
from .feature_views import FeatureView, Field, MaterializationInterval
from .on_demand import OnDemandFeatureView
from .projects import Project
from .search import SearchDocument, SearchIndexState, SearchTerm
from .services import FeatureService, FeatureViewProjection
from .sources import DataSource
from .stats import ViewStatistics

__all__ = [
    "DataSource",
    "Entity",
    "FeatureService",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "MaterializationInterval",
    "OnDemandFeatureView",
    "Project",
    "RegistryChange",
    "RegistryObject",
    "SavedDataset",
    "SearchDocument",
    "SearchIndexState",
    "SearchTerm",
    "ViewStatistics",
]

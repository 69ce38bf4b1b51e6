"""Larder's Python client: training sets, online features and push over the REST API.

from larder_client import Client
client = Client("http://127.0.0.1:8000", token="lrd_...", project="driver_stats")
df = client.get_historical_features(entity_df, features=["driver_hourly_stats:conv_rate"])
"""

from .client import Client
from .errors import (
    AuthenticationError,
    Conflict,
    Gone,
    InvalidRequest,
    JobFailed,
    JobTimeout,
    LarderError,
    NotFound,
    PermissionDenied,
    ServerError,
)

__version__ = "0.1.0"
__all__ = [
    "AuthenticationError",
    "Client",
    "Conflict",
    "Gone",
    "InvalidRequest",
    "JobFailed",
    "JobTimeout",
    "LarderError",
    "NotFound",
    "PermissionDenied",
    "ServerError",
]

"""Feast value types, as written in feature repos (`Float32`, `Array(String)`)."""

from django.db import models

SCALAR_DTYPES = ["Int32", "Int64", "Float32", "Float64", "String", "Bytes", "Bool", "UnixTimestamp"]
DTYPES = SCALAR_DTYPES + [f"Array({t})" for t in SCALAR_DTYPES]

# Feast's ValueType enum names, used in the REST JSON (`valueType`).
VALUE_TYPE_NAMES = {
    "Bytes": "BYTES",
    "String": "STRING",
    "Int32": "INT32",
    "Int64": "INT64",
    "Float64": "DOUBLE",
    "Float32": "FLOAT",
    "Bool": "BOOL",
    "UnixTimestamp": "UNIX_TIMESTAMP",
}
VALUE_TYPE_NAMES.update({f"Array({k})": f"{v}_LIST" for k, v in list(VALUE_TYPE_NAMES.items())})

DtypeChoices = models.TextChoices("DtypeChoices", [(d, d) for d in DTYPES])


def value_type_name(dtype: str) -> str:
    """Feast's ValueType enum name for a dtype string (`Float64` -> `DOUBLE`)."""
    return VALUE_TYPE_NAMES.get(dtype, "INVALID")

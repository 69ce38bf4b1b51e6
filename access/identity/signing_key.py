"""The built-in provider's RS256 signing key: from the environment, or a file made on first use.

Production passes the PEM itself in LARDER_OIDC_SIGNING_KEY (a secret store, the same
key on every web process). Otherwise the key lives in LARDER_OIDC_SIGNING_KEY_FILE
(default var/oidc-signing-key.pem, git-ignored), created with mode 0600 the first time
the provider signs a token or serves its JWKS, or by `manage.py setup_identity`.

Imported by larder/settings.py, so it must not touch django.conf at import time: the
settings hand DOT a lazy string that calls `signing_key_pem` when first read.
"""

import os
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_BITS = 2048
_lock = threading.Lock()
_cache: dict[tuple[str, str], str] = {}


def _settings_source() -> tuple[str, str]:
    from django.conf import settings

    return settings.LARDER_OIDC_SIGNING_KEY, str(settings.LARDER_OIDC_SIGNING_KEY_FILE)


def new_private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def ensure_key_file(path: Path) -> tuple[str, bool]:
    """The PEM kept at `path`, creating it (0600, atomically, race-safe) when missing.
    Returns (pem, created)."""
    path = Path(path)
    if path.exists():
        return path.read_text(encoding="ascii"), False
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = new_private_key_pem()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(pem)
    try:
        os.link(tmp, path)  # fails if another process created the key meanwhile: keep theirs
        created = True
    except FileExistsError:
        created = False
    finally:
        tmp.unlink()
    return path.read_text(encoding="ascii"), created


def signing_key_pem() -> str:
    """The private key DOT signs ID tokens with (PEM). Cached per configured source."""
    inline, path = _settings_source()
    with _lock:
        cached = _cache.get((inline, path))
        if cached is None:
            cached = inline.strip() + "\n" if inline.strip() else ensure_key_file(Path(path))[0]
            _cache[(inline, path)] = cached
        return cached

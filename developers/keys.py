"""API key material: generation, the stored keyed hash, parsing what a client sends.

A key is ``sk-<8-character public id>.<secret>``. The secret has 256 bits of entropy, so a fast keyed
hash is enough (no password hashing needed); the HMAC key (``API_KEY_HASH_KEY``, by default derived from
``SECRET_KEY``) keeps a leaked table useless without the server's secret. Comparison is constant time.
"""

import hashlib
import hmac
import re
import secrets
import string

from django.conf import settings

PREFIX_ALPHABET = string.ascii_lowercase + string.digits
KEY_RE = re.compile(r"sk-([a-z0-9]{8})\.([A-Za-z0-9_-]{43})")


def new_prefix() -> str:
    return "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(8))


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 43 characters


def full_key(prefix: str, secret: str) -> str:
    return f"sk-{prefix}.{secret}"


def _hash_key() -> bytes:
    configured = getattr(settings, "API_KEY_HASH_KEY", "")
    if configured:
        return configured.encode()
    return hashlib.sha256(f"api-key-hash:{settings.SECRET_KEY}".encode()).digest()


def secret_hash(prefix: str, secret: str) -> str:
    return hmac.new(_hash_key(), f"{prefix}.{secret}".encode(), hashlib.sha256).hexdigest()


def parse(value: str | None) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    match = KEY_RE.fullmatch((value or "").strip())
    return (match[1], match[2]) if match else None


def matches(stored_hash: str, prefix: str, secret: str) -> bool:
    return hmac.compare_digest(stored_hash, secret_hash(prefix, secret))

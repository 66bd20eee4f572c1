"""Encryption of secrets at rest (Shopify and Salesforce tokens) with Fernet.

``ENCRYPTION_KEY`` may hold several keys separated by commas, newest first: values are written
with the first and read with any (``MultiFernet``), so keys rotate without downtime.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenCipher:
    def __init__(self, keys: str) -> None:
        self._fernet = MultiFernet([Fernet(k.strip()) for k in keys.split(",") if k.strip()])

    def encrypt(self, plaintext: str | None) -> str | None:
        if plaintext is None:
            return None
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str | None) -> str | None:
        """Raises :class:`cryptography.fernet.InvalidToken` for a value no key can open."""
        if ciphertext is None:
            return None
        return self._fernet.decrypt(ciphertext.encode()).decode()


__all__ = ["InvalidToken", "TokenCipher"]

"""Secrets at rest: platform access tokens and per-shop secrets are Fernet-encrypted.

TOKEN_ENCRYPTION_KEYS is newest first; MultiFernet decrypts with any key and encrypts with
the first, so rotation = prepend a key, run `rotate`, then drop the old key.
"""
from __future__ import annotations

from cryptography.fernet import Fernet, MultiFernet
from flask import Flask, current_app


class TokenCipher:
    def init_app(self, app: Flask) -> None:
        app.extensions["lojal_cipher"] = MultiFernet([Fernet(k) for k in app.config["TOKEN_ENCRYPTION_KEYS"]])

    @staticmethod
    def _fernet() -> MultiFernet:
        return current_app.extensions["lojal_cipher"]

    def encrypt(self, plaintext: str) -> str:
        return self._fernet().encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._fernet().decrypt(token.encode()).decode()

    def rotate(self, token: str) -> str:
        """Re-encrypt with the newest key (no-op in meaning; new ciphertext)."""
        return self._fernet().rotate(token.encode()).decode()


token_cipher = TokenCipher()

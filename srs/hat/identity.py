"""A patient's legal identity, encrypted at rest with the key ``SRS_IDENTITY_KEY``.

Prescribing law names the patient (Canada's Narcotic Control Regulations, the UK's register),
so an enrolment holds a legal name, date of birth and health number: each is stored as a
Fernet token and only :func:`decrypt` reads it back. Nothing here logs a value.
"""

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


class IdentityUnreadable(RuntimeError):
    """A token the configured key did not make (the key was changed or lost)."""


def _fernet() -> Fernet:
    return Fernet(current_app.config["SRS_IDENTITY_KEY"].encode())


def encrypt(value: str | None) -> str | None:
    if value is None:
        return None
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise IdentityUnreadable(
            "This identity was encrypted with another SRS_IDENTITY_KEY.") from None

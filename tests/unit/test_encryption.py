"""Secrets at rest: AES-GCM with versioned keys, bound to their row (app/core/encryption.py)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from app.config import ConfigError, Settings, load_settings, parse_encryption_keys
from app.core.encryption import DecryptionFailed, Keyring, UnknownKeyVersion, derive_key, keyring_from_settings
from app.core.errors import ValidationFailed
from app.payments.credentials import StripeCredentials, hint, validate_stripe_keys

K1, K2 = os.urandom(32), os.urandom(32)
ROW = "provider_credentials/store-a/stripe/test/secret"
SECRET = "sk_test_51Habcdefghijklmnop4242"


def test_roundtrip_and_every_encryption_differs() -> None:
    ring = Keyring({1: K1})
    first, second = ring.encrypt(SECRET, context=ROW), ring.encrypt(SECRET, context=ROW)
    assert first != second  # a fresh nonce each time
    assert SECRET not in first and "4242" not in first
    assert ring.decrypt(first, context=ROW) == SECRET == ring.decrypt(second, context=ROW)
    assert ring.encrypt("", context=ROW) != "" and ring.decrypt(ring.encrypt("", context=ROW), context=ROW) == ""


def test_the_ciphertext_names_its_key_version() -> None:
    token = Keyring({1: K1, 2: K2}).encrypt(SECRET, context=ROW)
    assert token.startswith("v2.")
    assert Keyring.version_of(token) == 2


@pytest.mark.parametrize("position", [3, 10, 20, -5, -1])
def test_a_changed_byte_is_refused_never_garbage(position: int) -> None:
    ring = Keyring({1: K1})
    token = ring.encrypt(SECRET, context=ROW)
    prefix, body = token.split(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[position] ^= 0x01
    tampered = f"{prefix}." + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(DecryptionFailed, match="integrity check"):
        ring.decrypt(tampered, context=ROW)


@pytest.mark.parametrize("bad", ["", "sk_test_plain", "v1.", "v1.@@@", "v1.YWJj", "x1.AAAA", "v0.AAAA"])
def test_malformed_ciphertexts_are_refused(bad: str) -> None:
    with pytest.raises(DecryptionFailed):
        Keyring({1: K1}).decrypt(bad, context=ROW)


def test_a_ciphertext_moved_to_another_row_or_field_fails() -> None:
    ring = Keyring({1: K1})
    token = ring.encrypt(SECRET, context=ROW)
    for elsewhere in (
        "provider_credentials/store-b/stripe/test/secret",  # another store
        "provider_credentials/store-a/stripe/live/secret",  # the live row
        "provider_credentials/store-a/stripe/test/webhook_secret",  # another column
    ):
        with pytest.raises(DecryptionFailed):
            ring.decrypt(token, context=elsewhere)


def test_relabelling_the_version_fails() -> None:
    ring = Keyring({1: K1, 2: K1})  # even with the same key bytes, the version is bound in
    token = ring.encrypt(SECRET, context=ROW)
    with pytest.raises(DecryptionFailed):
        ring.decrypt("v1." + token.split(".", 1)[1], context=ROW)


def test_old_versions_still_decrypt_and_the_newest_encrypts() -> None:
    old = Keyring({1: K1}).encrypt(SECRET, context=ROW)
    rotated_ring = Keyring({2: K2, 1: K1})
    assert rotated_ring.newest_version == 2
    assert rotated_ring.decrypt(old, context=ROW) == SECRET
    assert not rotated_ring.is_current(old)
    new = rotated_ring.rotate(old, context=ROW)
    assert new.startswith("v2.") and rotated_ring.is_current(new)
    assert rotated_ring.decrypt(new, context=ROW) == SECRET
    with pytest.raises(DecryptionFailed):
        Keyring({2: K1}).decrypt(new, context=ROW)  # the right version number with the wrong key


def test_a_retired_version_says_which_version_is_missing() -> None:
    token = Keyring({1: K1}).encrypt(SECRET, context=ROW)
    with pytest.raises(UnknownKeyVersion, match="key version 1, which is not configured") as info:
        Keyring({2: K2}).decrypt(token, context=ROW)
    assert base64.b64encode(K2).decode() not in str(info.value)


def test_keys_must_be_32_bytes() -> None:
    with pytest.raises(Exception, match="32 bytes"):
        Keyring({1: b"short"})


def _settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings({"TILL_DATA_DIR": str(tmp_path), "SECRET_KEY": "s" * 40, **env})


def test_without_encryption_keys_version_1_comes_from_secret_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert settings.encryption_keys == ()
    ring = keyring_from_settings(settings)
    assert ring.versions == (1,)
    token = ring.encrypt(SECRET, context=ROW)
    assert keyring_from_settings(_settings(tmp_path)).decrypt(token, context=ROW) == SECRET  # stable across restarts
    assert derive_key("s" * 40) != derive_key("t" * 40)


def test_encryption_keys_parse_newest_first_and_keep_the_derived_version_1(tmp_path: Path) -> None:
    k2, k3 = base64.b64encode(K2).decode(), base64.b64encode(K1).decode()
    settings = _settings(tmp_path, ENCRYPTION_KEYS=f" 2:{k2} , 3:{k3}")
    assert [v for v, _ in settings.encryption_keys] == [3, 2]
    assert k2 not in repr(settings) and "encryption_keys=" not in repr(settings)
    ring = keyring_from_settings(settings)
    assert ring.versions == (3, 2, 1) and ring.newest_version == 3
    derived_only = keyring_from_settings(_settings(tmp_path)).encrypt(SECRET, context=ROW)
    assert ring.decrypt(derived_only, context=ROW) == SECRET  # moving to explicit keys loses nothing
    assert repr(ring) == "Keyring(versions=[3, 2, 1])"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", "entry 1 must look like <version>:<base64 key>"),
        ("0:AAAA", "entry 1 must look like"),
        ("1:not-base64!", "version 1 must be 32 random bytes in base64"),
        (f"1:{base64.b64encode(b'x' * 16).decode()}", "version 1 must be 32 random bytes"),
        (f"1:{base64.b64encode(K1).decode()},1:{base64.b64encode(K2).decode()}", "names version 1 twice"),
    ],
)
def test_bad_encryption_keys_fail_with_one_line_and_no_key(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_encryption_keys(raw)
    assert "\n" not in str(info.value)
    assert base64.b64encode(K1).decode() not in str(info.value)


def test_credentials_repr_shows_hints_only() -> None:
    creds = StripeCredentials(
        secret_key=SECRET, publishable_key="pk_test_abcdefghij1234", webhook_secret="whsec_abcdefghijklmnopWXYZ"
    )
    for text in (repr(creds), str(creds), f"{creds}"):
        assert SECRET not in text and "whsec_abcdefghijklmnop" not in text
        assert "sk_test_…4242" in text and "whsec_…WXYZ" in text
    assert hint("rk_live_abcdefghijkl9999") == "rk_live_…9999"


def test_stripe_key_shapes_per_mode() -> None:
    good = ("sk_test_abcdefghijkl", "pk_test_abcdefghijkl", "whsec_abcdefghijkl")
    validate_stripe_keys("test", *good)
    validate_stripe_keys("test", "rk_test_abcdefghijkl", good[1], good[2])
    with pytest.raises(ValidationFailed) as info:
        validate_stripe_keys("test", "sk_live_abcdefghijkl", "pk_x", "abc")
    assert set(info.value.fields) == {"secret_key", "publishable_key", "webhook_secret"}
    assert "live key" in info.value.fields["secret_key"]
    assert all("abcdefghijkl" not in message for message in info.value.fields.values())
    with pytest.raises(ValidationFailed) as short:
        validate_stripe_keys("live", "sk_live_ab", "pk_live_abcdefghijkl", "whsec_abcdefghijkl")
    assert set(short.value.fields) == {"secret_key"}

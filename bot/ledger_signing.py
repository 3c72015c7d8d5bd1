"""Signed checkpoints: what makes the ledger unforgeable by whoever can merely write its folder.

The hash chain alone proves that records were not edited *after* the anchor was written, but anyone who
can write the data directory can recompute every hash and the anchor too. A checkpoint is an Ed25519
signature over (ledger id, seq, head hash, time) made with a key kept outside the data directory, so a
forger now needs the key as well. A key rotation is a record signed by the old key naming the new one,
so an auditor who holds any earlier public key can follow the chain of keys to the current one.

The ledger id is the hash of the ledger's first record: it ties a checkpoint to one ledger, so a
checkpoint copied from another deployment signed with the same key proves nothing here.

Lines of ``ledger-checkpoints.jsonl`` are canonical JSON objects with a ``type`` of ``checkpoint`` or
``rotation``. Signatures and hashes are hex so the text survives being posted in chat (no ``_`` or ``*``
for Markdown to eat).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.ledger import LedgerHead, canonical_json

_CHECKPOINT_CONTEXT = b"accessbot-ledger-checkpoint-v1\n"
_ROTATION_CONTEXT = b"accessbot-ledger-key-rotation-v1\n"
WITNESS_MARK = "accessbot-checkpoint"
"""Precedes the checkpoint JSON in a witness notice, so ``verify --witness`` can find it in pasted text."""
WITNESS_ADVICE = ("Keep this message: with it an auditor can prove that nothing up to here was later removed or "
                  "rewritten (`accessbot ledger verify --witness`).")


class LedgerKeyError(ValueError):
    """A signing or public key cannot be used: missing, unreadable, not Ed25519, or inside the data dir."""


class CheckpointUnreadable(ValueError):
    """A line of the checkpoint file (or a witness) is not a checkpoint or rotation record."""


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex: what doctor prints and each checkpoint names."""
    return hashlib.sha256(_raw_public(public_key)).hexdigest()


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(data: bytes, source: str = "the public key") -> Ed25519PublicKey:
    """A PEM public key (as written by ``accessbot ledger keygen``, or inside an evidence pack)."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as bad:
        raise LedgerKeyError(f"{source} is not a PEM public key ({bad})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise LedgerKeyError(f"{source} is not an Ed25519 key")
    return key


def load_public_key_file(path: Path, data_dir: Path | None = None) -> Ed25519PublicKey:
    """Refuses a public key inside ``data_dir``: whoever can write the data could swap in their own key,
    re-sign a rewritten ledger with it, and verify would trust it."""
    if data_dir is not None and _inside(path, data_dir):
        raise LedgerKeyError(
            f"the public key {path} is inside the data directory {data_dir}: whoever can write the data can replace "
            "it with their own; check against the copy you were given (keygen's .pub, or an evidence pack's)"
        )
    try:
        data = path.read_bytes()
    except OSError as bad:
        raise LedgerKeyError(f"cannot read the public key {path}: {bad.strerror or bad}") from None
    return load_public_key(data, str(path))


class LedgerSigner:
    """The private signing key, held by the one process that writes the ledger."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key = private_key.public_key()
        self.fingerprint = fingerprint(self.public_key)

    @classmethod
    def generate(cls) -> LedgerSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_text(cls, text: str, source: str = "ACCESSBOT_LEDGER_KEY") -> LedgerSigner:
        """A PEM private key, or the base64 of the 32-byte Ed25519 seed (handier in a secret store)."""
        text = text.strip()
        if text.startswith("-----BEGIN"):
            try:
                key = serialization.load_pem_private_key(text.encode(), password=None)
            except (ValueError, TypeError) as bad:
                raise LedgerKeyError(f"{source} is not an unencrypted PEM private key ({bad})") from None
            if not isinstance(key, Ed25519PrivateKey):
                raise LedgerKeyError(f"{source} is not an Ed25519 key")
            return cls(key)
        try:
            seed = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            seed = b""
        if len(seed) != 32:
            raise LedgerKeyError(f"{source} is neither a PEM private key nor the base64 of a 32-byte Ed25519 seed")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_file(cls, path: Path, data_dir: Path | None = None) -> LedgerSigner:
        """Refuses a key inside ``data_dir``: whoever can write the data could then also sign it."""
        if data_dir is not None and _inside(path, data_dir):
            raise LedgerKeyError(
                f"the ledger key {path} is inside the data directory {data_dir}: keep it elsewhere, or whoever "
                "can write the data can also sign it"
            )
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as bad:
            reason = bad.strerror if isinstance(bad, OSError) and bad.strerror else str(bad)
            raise LedgerKeyError(f"cannot read the ledger key {path}: {reason}") from None
        return cls.from_text(text, str(path))

    def private_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def checkpoint(self, ledger_id: str, head: LedgerHead, at: str) -> Checkpoint:
        unsigned = Checkpoint(ledger_id, head.seq, head.hash, at, self.fingerprint, "")
        return Checkpoint(ledger_id, head.seq, head.hash, at, self.fingerprint, self._sign(unsigned.message()))

    def rotation(self, ledger_id: str, head: LedgerHead, at: str, new_key: Ed25519PublicKey) -> KeyRotation:
        """Hands the ledger over to ``new_key``, signed with this (the old) key."""
        new = base64.b64encode(_raw_public(new_key)).decode()
        unsigned = KeyRotation(ledger_id, head.seq, head.hash, at, self.fingerprint, new, "")
        return KeyRotation(ledger_id, head.seq, head.hash, at, self.fingerprint, new, self._sign(unsigned.message()))

    def _sign(self, message: bytes) -> str:
        return self._private.sign(message).hex()


def _inside(path: Path, folder: Path) -> bool:
    """Inside by where it really is, or by the name it is given: a symlink in the data directory that points
    at a key elsewhere can be swapped for one pointing at a key of the attacker's by whoever writes there."""
    folders = (folder.resolve(), Path(os.path.abspath(folder)))
    return any(named.is_relative_to(within) for named in (path.resolve(), Path(os.path.abspath(path)))
               for within in folders)


def write_key_pair(signer: LedgerSigner, out: Path) -> Path:
    """The private key to ``out`` (mode 0600, never over an existing file) and the public key beside it
    as ``out.pub``; returns the public key's path."""
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LedgerKeyError(f"{out} already exists: refusing to overwrite a signing key") from None
    except OSError as bad:
        raise LedgerKeyError(f"cannot write {out}: {bad.strerror or bad}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(signer.private_pem())
        handle.flush()
        os.fsync(handle.fileno())
    public = out.with_name(out.name + ".pub")
    public.write_bytes(public_key_pem(signer.public_key))
    return public


def _verify(public_key: Ed25519PublicKey, signature_hex: str, message: bytes) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Checkpoint:
    """The signer's word that record ``seq`` of ledger ``ledger_id`` had hash ``hash`` at ``at``."""

    ledger_id: str
    seq: int
    hash: str
    at: str
    key: str  # fingerprint of the signing key
    sig: str

    @property
    def head(self) -> LedgerHead:
        return LedgerHead(self.seq, self.hash)

    def message(self) -> bytes:
        body = {"ledger_id": self.ledger_id, "seq": self.seq, "hash": self.hash, "at": self.at, "key": self.key}
        return _CHECKPOINT_CONTEXT + canonical_json(body)

    def signed_by(self, public_key: Ed25519PublicKey) -> bool:
        return fingerprint(public_key) == self.key and _verify(public_key, self.sig, self.message())

    def to_dict(self) -> dict[str, Any]:
        return {"type": "checkpoint", "ledger_id": self.ledger_id, "seq": self.seq, "hash": self.hash,
                "at": self.at, "key": self.key, "sig": self.sig}

    def witness_text(self) -> str:
        """The form posted to the security leads: a sentence, then the checkpoint as one line of JSON."""
        return (
            f"Ledger checkpoint: record {self.seq} of the attestation ledger, signed {self.at}. {WITNESS_ADVICE} "
            + self.witness_line()
        )

    def witness_line(self) -> str:
        """What ``parse_witness`` reads: the mark, then the signed checkpoint as one line of JSON."""
        return f"{WITNESS_MARK} " + canonical_json(self.to_dict()).decode()


@dataclass(frozen=True)
class KeyRotation:
    """The old key (``key``) hands the ledger, as of record ``seq``, to ``new_key`` (base64 raw public key)."""

    ledger_id: str
    seq: int
    hash: str
    at: str
    key: str
    new_key: str
    sig: str

    @property
    def new_public_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(self.new_key))

    def message(self) -> bytes:
        body = {"ledger_id": self.ledger_id, "seq": self.seq, "hash": self.hash, "at": self.at, "key": self.key,
                "new_key": self.new_key}
        return _ROTATION_CONTEXT + canonical_json(body)

    def signed_by(self, public_key: Ed25519PublicKey) -> bool:
        return fingerprint(public_key) == self.key and _verify(public_key, self.sig, self.message())

    def to_dict(self) -> dict[str, Any]:
        return {"type": "rotation", "ledger_id": self.ledger_id, "seq": self.seq, "hash": self.hash, "at": self.at,
                "key": self.key, "new_key": self.new_key, "sig": self.sig}


SignedEntry = Union[Checkpoint, KeyRotation]


def entry_to_line(entry: SignedEntry) -> bytes:
    return canonical_json(entry.to_dict()) + b"\n"


def entry_from_dict(raw: Any, where: str = "a checkpoint") -> SignedEntry:
    """Refuses anything that is not exactly a checkpoint or a rotation with well-typed fields."""
    if not isinstance(raw, dict):
        raise CheckpointUnreadable(f"{where} is not a JSON object")
    kind = raw.get("type")
    fields = {"checkpoint": Checkpoint, "rotation": KeyRotation}.get(kind)  # type: ignore[arg-type]
    if fields is None:
        raise CheckpointUnreadable(f"{where} has no type 'checkpoint' or 'rotation'")
    names = set(fields.__dataclass_fields__)
    if set(raw) != names | {"type"}:
        raise CheckpointUnreadable(f"{where} must have exactly the fields {', '.join(sorted(names | {'type'}))}")
    for name in names:
        want = int if name == "seq" else str
        if not isinstance(raw[name], want) or isinstance(raw[name], bool):
            raise CheckpointUnreadable(f"{where}: {name} is not a{'n integer' if want is int else ' string'}")
    if kind == "rotation":
        try:
            if len(base64.b64decode(raw["new_key"], validate=True)) != 32:
                raise ValueError
        except (binascii.Error, ValueError):
            raise CheckpointUnreadable(f"{where}: new_key is not a base64 Ed25519 public key") from None
    return fields(**{name: raw[name] for name in names})


def entry_from_line(line: bytes, line_number: int) -> SignedEntry:
    where = f"line {line_number} of ledger-checkpoints.jsonl"
    try:
        raw = json.loads(line)
    except (ValueError, UnicodeDecodeError) as bad:
        raise CheckpointUnreadable(f"{where} is not JSON ({bad})") from None
    return entry_from_dict(raw, where)


def parse_witness(text: str) -> Checkpoint:
    """A checkpoint from a witness: the posted chat text (found after its mark), or a JSON file's content."""
    start = text.find(WITNESS_MARK)
    start = text.find("{", start if start >= 0 else 0)
    if start < 0:
        raise CheckpointUnreadable("the witness holds no checkpoint (expected the JSON after 'accessbot-checkpoint')")
    try:
        raw, _ = json.JSONDecoder().raw_decode(text, start)
    except ValueError as bad:
        raise CheckpointUnreadable(f"the witness's checkpoint is not JSON ({bad})") from None
    entry = entry_from_dict(raw, "the witness")
    if not isinstance(entry, Checkpoint):
        raise CheckpointUnreadable("the witness is a key rotation, not a checkpoint")
    return entry


def configured_signer(key_file: Path | None, key_text: str, data_dir: Path) -> LedgerSigner | None:
    """The signing key a deployment configured (a file, or the key itself from a secret), or None."""
    if key_file is not None:
        return LedgerSigner.from_file(key_file, data_dir)
    if key_text.strip():
        return LedgerSigner.from_text(key_text)
    return None

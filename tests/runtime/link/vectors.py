"""Loads docs/protocol_vectors.json and renders decoded messages in the one canonical text form
that the Python tests and the firmware's host harness both print."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from runtime.link.protocol import Frame, Message, MsgType, decode_message

VECTORS_PATH = Path(__file__).resolve().parents[3] / "docs" / "protocol_vectors.json"


def load_vectors() -> dict[str, Any]:
    return json.loads(VECTORS_PATH.read_text())


def canonical(type_name: str, seq: int, fields: dict[str, Any]) -> str:
    parts = [type_name, f"seq={seq}"]
    parts += [f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in fields.items()]
    return " ".join(parts)


def describe(frame: Frame, msg: Message | None = None) -> str:
    msg = decode_message(frame) if msg is None else msg
    return canonical(MsgType(frame.type).name, frame.seq, asdict(msg))


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text)

"""Loads docs/protocol_vectors.json and renders decoded messages in the one canonical text form
that the Python tests and the firmware's host harness both print."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from runtime.link.protocol import (
    Arm,
    Drive,
    Heartbeat,
    Message,
    MsgType,
    Neutral,
    Status,
    WireFrame,
    decode_message,
)

VECTORS_PATH = Path(__file__).resolve().parents[3] / "docs" / "protocol_vectors.json"


def load_vectors() -> dict[str, Any]:
    return json.loads(VECTORS_PATH.read_text())


def dump_vectors(data: dict[str, Any]) -> str:
    """The vectors file's layout: one frame per line, one scenario step per line."""

    def one(v: Any) -> str:
        return json.dumps(v, ensure_ascii=False)

    lines = ["{"]
    keys = list(data)
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        value = data[key]
        if key == "scenarios":
            lines.append(f' "{key}": [')
            for j, sc in enumerate(value):
                head = {k: v for k, v in sc.items() if k != "steps"}
                lines.append("  " + one(head)[:-1] + ', "steps": [')
                lines += [f"   {one(st)}" + ("," if k < len(sc["steps"]) - 1 else "") for k, st in enumerate(sc["steps"])]
                lines.append("  ]}" + ("," if j < len(value) - 1 else ""))
            lines.append(" ]" + comma)
        elif isinstance(value, list):
            lines.append(f' "{key}": [')
            lines += [f"  {one(v)}" + ("," if j < len(value) - 1 else "") for j, v in enumerate(value)]
            lines.append(" ]" + comma)
        else:
            lines.append(f' "{key}": {one(value)}{comma}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def message(type_name: str, fields: dict[str, Any]) -> Message:
    """The message a vector's ``fields`` describe (NEUTRAL's are the wire's u8 ``flags``)."""
    if type_name == "NEUTRAL":
        return Neutral(disarm=bool(fields["flags"] & 1))
    cls = {"ARM": Arm, "DRIVE": Drive, "HEARTBEAT": Heartbeat, "STATUS": Status}[type_name]
    return cls(**fields)


def wire_fields(msg: Message) -> dict[str, Any]:
    """A message's payload fields as the spec names them (NEUTRAL: u8 ``flags``)."""
    if isinstance(msg, Neutral):
        return {"flags": int(msg.disarm)}
    return asdict(msg)


def canonical(type_name: str, seq: int, fields: dict[str, Any]) -> str:
    parts = [type_name, f"seq={seq}"]
    parts += [f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in fields.items()]
    return " ".join(parts)


def describe(frame: WireFrame, msg: Message | None = None) -> str:
    msg = decode_message(frame) if msg is None else msg
    return canonical(MsgType(frame.type).name, frame.seq, wire_fields(msg))


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text)

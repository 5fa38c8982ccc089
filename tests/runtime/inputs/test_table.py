"""The role table: every role has a provider; an unknown role is refused naming the input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from runtime.inputs import PROVIDERS, InputContext, InputError, InputProvider, make_providers
from runtime.link.null_link import NullDriveLink
from runtime.link.sent_commands import SentCommands
from runtime.manifest import ROLE_NAMES


@dataclass
class Spec:
    name: str
    role: str
    shape: tuple[int, ...]
    layout: str = "NC"
    preprocess: Any = None
    length: int | None = None
    order: Any = None
    labels: Any = None


def test_the_contracts_roles_are_all_in_the_table() -> None:
    # every role a manifest may name has a provider, and no provider feeds a role the contract lacks
    assert set(PROVIDERS) == set(ROLE_NAMES) == {"image", "image_sequence", "memory", "imu", "behavior", "wheel_speed"}
    for role, build in PROVIDERS.items():
        cls = build.__self__  # type: ignore[attr-defined]
        assert issubclass(cls, InputProvider) and cls.role == role


def test_providers_in_manifest_order() -> None:
    ctx = InputContext(behavior="b", commands=SentCommands(NullDriveLink()))
    ps = make_providers([Spec("behavior_in", "behavior", (1, 2), labels=["a", "b"]),
                         Spec("mem_in", "memory", (1, 4), length=2)], ctx)
    assert [(p.name, p.role) for p in ps] == [("behavior_in", "behavior"), ("mem_in", "memory")]


def test_an_unknown_role_is_refused_naming_it() -> None:
    with pytest.raises(InputError, match=r"input 'lidar_in' has role 'lidar'.*feeds image, image_sequence"):
        make_providers([Spec("lidar_in", "lidar", (1, 360))], InputContext())

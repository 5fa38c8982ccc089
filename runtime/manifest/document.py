"""``manifest.json`` as a whole: :class:`Manifest` (its model, inputs, outputs and builds), its
text, and reading it from a bundle directory."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.manifest.builds import BuildEntry
from runtime.manifest.errors import BundleError
from runtime.manifest.inputs import IMAGE, InputSpec
from runtime.manifest.outputs import PERCEPTION_MEANINGS, OutputSpec
from runtime.manifest.preprocess_spec import PreprocessSpec

# 2: several inputs with roles, outputs with decoders; 3: perception outputs (segmentation,
# detection). A manifest is written with the lowest version that holds its content, so a driving
# bundle stays readable by schema-2 runtimes and a perception bundle is refused by them with
# "upgrade the runtime" rather than an unknown meaning. 1 and 2 are still read.
SCHEMA_VERSION = 3

if TYPE_CHECKING:
    from runtime.perception import PerceptionDecoder
PERCEPTION_SCHEMA = 3
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class ModelInfo:
    """Where the bundle came from: registered model name and version, MLflow run id, source URI and flavor."""

    name: str
    version: str
    run_id: str | None
    source_uri: str
    flavor: str


@dataclass
class Manifest:
    """The bundle's ``manifest.json`` (contract: DESIGN.md "The edge bundle" and "Model I/O").

    ``inputs``: every model input with its role; ``outputs``: every (tensor, meaning) with its
    decoder; ``builds``: one entry per file, each mapping the logical names to its own tensors.
    Schema 1 bundles (one ``input``, outputs without ``decode``) are read as one ``image`` input
    and ``scalar`` outputs. Validation errors are :class:`BundleError` naming the field and the fix.
    """

    model: ModelInfo
    inputs: list[InputSpec]
    outputs: list[OutputSpec]
    builds: list[BuildEntry]
    created_at: str
    converter_version: str
    schema_version: int = SCHEMA_VERSION
    source: dict[str, Any] = field(default_factory=dict)  # conversion inputs, cache key, reference samples
    not_built: list[dict[str, str]] = field(default_factory=list)  # {format, status, reason}

    def __post_init__(self) -> None:
        if isinstance(self.inputs, InputSpec):  # one input, as schema-1 callers pass it
            self.inputs = [self.inputs]
        names = [i.name for i in self.inputs]
        if len(set(names)) != len(names):
            raise BundleError(f"manifest: input names {names} are not unique")
        if not any(i.is_image for i in self.inputs):
            raise BundleError("manifest: no input has role image or image_sequence; the car feeds camera frames")
        seen: set[tuple[str, str]] = set()
        for o in self.outputs:
            if o.meaning != "other" and any(p[1] == o.meaning for p in seen):
                raise BundleError(f"manifest: more than one output means {o.meaning}")
            seen.add((o.name, o.meaning))
        self.schema_version = self.written_schema  # what this content is written as (see SCHEMA_VERSION)
        listed = set(self.output_names())
        for meaning in PERCEPTION_MEANINGS:
            dec = self.perception_decoder(meaning)
            missing = [n for n in (dec.reads if dec else ()) if n not in listed]
            if missing:
                raise BundleError(f"manifest: the {meaning} decoder reads outputs {missing}, which are not in "
                                  f"outputs {sorted(listed)}; list them (meaning other)")

    @property
    def camera_input(self) -> InputSpec:
        """The camera input (the first with role image or image_sequence)."""
        return next(i for i in self.inputs if i.is_image)

    @property
    def preprocess(self) -> PreprocessSpec:
        """The camera input's preprocessing (every image input of a bundle shares one camera)."""
        pre = self.camera_input.preprocess
        assert pre is not None  # InputSpec refuses an image role without one
        return pre

    def image_inputs(self) -> list[InputSpec]:
        """The camera inputs (roles ``image`` and ``image_sequence``), in manifest order."""
        return [i for i in self.inputs if i.is_image]

    def input_named(self, name: str) -> InputSpec:
        """The input called ``name``; :class:`BundleError` listing the inputs when there is none."""
        for i in self.inputs:
            if i.name == name:
                return i
        raise BundleError(f"manifest has no input {name!r} (inputs: {[i.name for i in self.inputs]})")

    def output_names(self) -> list[str]:
        """Distinct output tensor names, in manifest order."""
        return list(dict.fromkeys(o.name for o in self.outputs))

    def build(self, fmt: str) -> BuildEntry:
        """The entry for format id ``fmt``; :class:`BundleError` naming the builds present and the
        ``--formats`` fix otherwise.
        """
        for b in self.builds:
            if b.format == fmt:
                return b
        have = ", ".join(b.format for b in self.builds) or "none"
        raise BundleError(f"bundle has no {fmt!r} build (it has: {have}); convert it with --formats {fmt}")

    def has(self, fmt: str) -> bool:
        """True when the bundle has a build of format id ``fmt``."""
        return any(b.format == fmt for b in self.builds)

    def output_by_meaning(self, meaning: str) -> OutputSpec | None:
        """The first output with ``meaning`` (``steering``, ``throttle``, ``other``, ``segmentation``,
        ``detection``), or None."""
        return next((o for o in self.outputs if o.meaning == meaning), None)

    def perception_decoder(self, meaning: str) -> PerceptionDecoder | None:
        """The decoder of the output meaning ``segmentation`` or ``detection``, or None."""
        from runtime.perception import perception_decoder_for

        o = self.output_by_meaning(meaning)
        return perception_decoder_for(meaning, o.decode, o.shape, o.name) if o is not None else None

    @property
    def task(self) -> str:
        """What the model does: ``driving`` (it has a steering output), else ``segmentation`` or
        ``detection`` (a perception model: a lane-following pilot drives by the first, the safety
        layer reads the second), else ``unknown``."""
        for meaning in ("steering", *PERCEPTION_MEANINGS):
            if self.output_by_meaning(meaning) is not None:
                return "driving" if meaning == "steering" else meaning
        return "unknown"

    @property
    def written_schema(self) -> int:
        """The schema version ``manifest.json`` is written with: 3 with perception outputs, else 2."""
        return PERCEPTION_SCHEMA if any(o.meaning in PERCEPTION_MEANINGS for o in self.outputs) else 2

    def to_dict(self) -> dict[str, Any]:
        """The whole manifest as ``manifest.json`` stores it (always the current schema)."""
        return {
            "schema_version": self.schema_version,
            "converter_version": self.converter_version,
            "created_at": self.created_at,
            "model": asdict(self.model),
            "inputs": [i.to_dict() for i in self.inputs],
            "outputs": [o.to_dict() for o in self.outputs],
            "builds": [b.to_dict() for b in self.builds],
            "source": self.source,
            "not_built": self.not_built,
        }

    def dumps(self) -> str:
        """``manifest.json``'s text: indented JSON, fields in the order ``to_dict`` lists them, and a
        trailing newline."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        """Parse and validate a loaded ``manifest.json`` (schema 1 or 2; schema 1 is upgraded to 2).

        Raises :class:`BundleError` for a schema newer than :data:`SCHEMA_VERSION` (upgrade the runtime),
        a missing key, or any malformed or inconsistent field.
        """
        try:
            sv = int(d["schema_version"])
            if sv > SCHEMA_VERSION:
                raise BundleError(
                    f"manifest schema_version {sv} is newer than this runtime understands ({SCHEMA_VERSION}); "
                    "upgrade the runtime"
                )
            if sv >= 2:
                inputs = [InputSpec.from_dict(i) for i in d["inputs"]]
            else:  # schema 1: one camera input
                inputs = [InputSpec.from_dict({**d["input"], "role": IMAGE})]
            return cls(
                schema_version=SCHEMA_VERSION,  # replaced by written_schema: what the content needs
                converter_version=str(d.get("converter_version", "?")),
                created_at=str(d.get("created_at", "")),
                model=ModelInfo(**d["model"]),
                inputs=inputs,
                outputs=[OutputSpec.from_dict(o) for o in d["outputs"]],
                builds=[BuildEntry.from_dict(b) for b in d.get("builds", [])],
                source=dict(d.get("source") or {}),
                not_built=list(d.get("not_built") or []),
            )
        except KeyError as e:
            raise BundleError(f"manifest is missing {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            if isinstance(e, BundleError):
                raise
            raise BundleError(f"manifest is malformed: {e}") from None


def load_manifest(bundle_dir: str | Path) -> Manifest:
    """Read and validate ``bundle_dir/manifest.json``; :class:`BundleError` with the fix otherwise."""
    path = Path(bundle_dir) / MANIFEST_NAME
    if not path.is_file():
        # builds/<model>/ holds one bundle per version: name them rather than only say "not found".
        inside = sorted(str(p.parent) for p in Path(bundle_dir).glob(f"*/{MANIFEST_NAME}"))[:5]
        if inside:
            raise BundleError(f"{path} not found: {bundle_dir} holds bundles, pass one of: {', '.join(inside)}")
        raise BundleError(f"{path} not found: is {bundle_dir} a bundle made by convert-model?")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BundleError(f"{path} is not valid JSON ({e}); re-run convert-model") from None
    return Manifest.from_dict(data)

"""What the typed model says about dotted keys: which are fields, their defaults, how to validate.

A dotted key maps to a path of nested pydantic models: ``"ai.model.default"`` is the field
``default`` of the model in field ``model`` of the model in field ``ai``. Keys that match no
field are *extra*: accepted as untyped values unless the model forbids extra fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, get_args

from pydantic import BaseModel, SecretBytes, SecretStr, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from ..errors import InvalidValueError
from ..security.redaction import looks_secret, shown

__all__ = ["Schema"]


class Schema:
    """Introspects a pydantic model once; builds settings objects from flat dotted values."""

    __slots__ = (
        "_adapters",
        "_fields",
        "_leaf_paths",
        "_secret",
        "defaults",
        "empty_settings",
        "forbids_extra",
        "model",
        "sections",
    )

    def __init__(self, model: type[BaseModel] | None) -> None:
        if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ValueError(
                "model must be a pydantic model class (a subclass of pydantic.BaseModel) or "
                f"None, got {model!r:.60}"
            )
        self.model = model
        self._leaf_paths: dict[str, tuple[str, ...]] = {}
        self._fields: dict[str, FieldInfo] = {}
        self._adapters: dict[str, TypeAdapter[Any]] = {}
        self._secret: set[str] = set()
        self.sections: frozenset[str] = frozenset()
        self.forbids_extra = False
        self.defaults: dict[str, Any] = {}
        self.empty_settings: Any = None
        if model is None:
            return
        sections: set[str] = set()
        _collect(model, (), self._leaf_paths, self._fields, sections)
        self.sections = frozenset(sections)
        self.forbids_extra = model.model_config.get("extra") == "forbid"
        try:
            self.empty_settings = model()
        except ValidationError as exc:
            raise TypeError(
                f"{model.__name__} must be constructible without arguments: give every field a "
                f"default so that hotconfig can serve it before the first snapshot ({exc})"
            ) from None
        self.defaults = self.flatten(self.empty_settings)
        self._secret = {k for k, f in self._fields.items() if _is_secret_type(f.annotation)}
        try:
            self.build({})
        except InvalidValueError as exc:
            # pydantic does not validate defaults, but every build re-validates them: a bad one
            # would make every later change fail, so say so now.
            raise TypeError(
                f"{model.__name__}: the default of {exc.key!r} fails its own field's validation "
                f"({exc.detail}); fix the default or its annotation"
            ) from None

    def is_field(self, key: str) -> bool:
        return key in self._leaf_paths

    def check_key(self, key: str) -> None:
        """Raise :class:`InvalidValueError` if the model cannot hold ``key`` at all."""
        if key in self.sections:
            raise InvalidValueError(key, "is a section of the model; set its fields one by one")
        if self.forbids_extra and key not in self._leaf_paths:
            raise InvalidValueError(key, "is not a field of the model, which forbids extra fields")

    def check_value(self, key: str, value: Any) -> None:
        """Validate one value against its field alone, so that every bad value is reported even
        when a later value of the same key replaces it within one swap. Model-level validators
        run in :meth:`build`, on the values that end up in effect."""
        field = self._fields.get(key)
        if field is None:
            return
        adapter = self._adapters.get(key)
        if adapter is None:
            annotated: Any = Annotated[field.annotation, field]  # a runtime-built type
            adapter = self._adapters[key] = TypeAdapter(annotated)
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            raise InvalidValueError(key, f"{message} ({self._input(key, value)})") from None
        except Exception as exc:  # a validator that raised something pydantic does not wrap
            raise InvalidValueError(key, f"{type(exc).__name__}: {exc}") from None

    def build(self, values: Mapping[str, Any]) -> Any:
        """Validate the typed keys of ``values`` into a new settings object.

        Raises :class:`InvalidValueError` naming the first key pydantic rejected.
        """
        assert self.model is not None
        # Every leaf is given, defaults included: a section whose default is a customised
        # instance must keep its other fields when one of them changes.
        defaults = self.defaults
        nested: dict[str, Any] = {}
        for key, path in self._leaf_paths.items():
            node = nested
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = values[key] if key in values else defaults[key]
        try:
            return self.model.model_validate(nested, by_name=True)
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = ".".join(str(part) for part in error["loc"])
            key = loc if loc in self._leaf_paths else self._key_for(loc)
            raise InvalidValueError(
                key, f"{error['msg']} ({self._input(key, error.get('input'))})"
            ) from None
        except Exception as exc:  # a validator that raised something pydantic does not wrap
            raise InvalidValueError("<model>", f"{type(exc).__name__}: {exc}") from None

    def _input(self, key: str, value: Any) -> str:
        return "input " + shown(value, key in self._secret or looks_secret(key))

    def flatten(self, settings: Any) -> dict[str, Any]:
        """The effective value of every model field, by dotted key."""
        flat: dict[str, Any] = {}
        for key, path in self._leaf_paths.items():
            node = settings
            for part in path:
                node = getattr(node, part)
            flat[key] = node
        return flat

    def typed_keys(self, keys: Iterable[str]) -> bool:
        """Whether any of ``keys`` is a model field (so the settings object must be rebuilt)."""
        paths = self._leaf_paths
        return any(key in paths for key in keys)

    def _key_for(self, loc: str) -> str:
        for key in self._leaf_paths:
            if loc.startswith(key + ".") or key.startswith(loc + "."):
                return key
        return loc or "<model>"


def _is_secret_type(annotation: Any) -> bool:
    if annotation in (SecretStr, SecretBytes):
        return True
    return any(_is_secret_type(arg) for arg in get_args(annotation))


def _collect(
    model: type[BaseModel],
    prefix: tuple[str, ...],
    leaves: dict[str, tuple[str, ...]],
    fields: dict[str, FieldInfo],
    sections: set[str],
) -> None:
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sections.add(".".join(path))
            _collect(annotation, path, leaves, fields, sections)
        else:
            leaves[".".join(path)] = path
            fields[".".join(path)] = field

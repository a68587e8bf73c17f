"""The typed model: dotted keys onto nested fields, defaults, and validation that says why."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from hotconfig import InvalidValueError
from hotconfig._config.schema import Schema


class Model(BaseModel):
    default: str = "gpt-3.5"
    temperature: float = Field(0.2, ge=0, le=2)


class AI(BaseModel):
    model: Model = Model()


class Settings(BaseModel):
    ai: AI = AI()
    feature_x: bool = False
    api: SecretStr = SecretStr("dev-key")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    feature_x: bool = False


def test_dotted_keys_map_to_nested_fields_with_their_defaults() -> None:
    schema = Schema(Settings)
    assert schema.defaults == {
        "ai.model.default": "gpt-3.5",
        "ai.model.temperature": 0.2,
        "feature_x": False,
        "api": SecretStr("dev-key"),
    }
    assert (schema.is_field("ai.model.default"), schema.is_field("ai.model")) == (True, False)
    assert schema.sections == {"ai", "ai.model"}
    settings = schema.build({"ai.model.default": "gpt-4o", "feature_x": True})
    assert isinstance(settings, Settings)
    assert (settings.ai.model.default, settings.ai.model.temperature) == ("gpt-4o", 0.2)
    assert settings.feature_x is True


def test_a_customised_section_default_keeps_its_other_fields_when_one_changes() -> None:
    class Tuned(BaseModel):
        ai: AI = AI(model=Model(default="tuned", temperature=1.5))

    settings = Schema(Tuned).build({"ai.model.temperature": 0.5})
    assert (settings.ai.model.default, settings.ai.model.temperature) == ("tuned", 0.5)


def test_a_bad_value_names_its_key_and_why() -> None:
    schema = Schema(Settings)
    with pytest.raises(InvalidValueError, match=r"ai\.model\.temperature.*less than or equal"):
        schema.check_value("ai.model.temperature", 5)
    with pytest.raises(InvalidValueError) as raised:
        schema.build({"feature_x": "maybe"})
    assert raised.value.key == "feature_x"
    schema.check_value("untyped.key", object())  # not a field: anything goes


def test_secret_values_never_appear_in_errors() -> None:
    class Secrets(BaseModel):
        api: SecretStr = SecretStr("x")
        db_password: int = 0

    schema = Schema(Secrets)
    with pytest.raises(InvalidValueError) as by_type:
        schema.check_value("api", ["hunter2"])
    with pytest.raises(InvalidValueError) as by_name:
        schema.check_value("db_password", "hunter2")
    for raised in (by_type, by_name):
        assert "hunter2" not in str(raised.value)
        assert "***" in str(raised.value)


def test_sections_are_refused_as_keys_and_extra_keys_only_when_forbidden() -> None:
    with pytest.raises(InvalidValueError, match="section"):
        Schema(Settings).check_key("ai.model")
    Schema(Settings).check_key("not.in.model")
    with pytest.raises(InvalidValueError, match="forbids extra"):
        Schema(Strict).check_key("not.in.model")
    Schema(Strict).check_key("feature_x")


def test_model_level_validators_run_on_the_values_in_effect() -> None:
    class Range(BaseModel):
        low: int = 0
        high: int = 10

        @model_validator(mode="after")
        def ordered(self) -> Range:
            if self.low > self.high:
                raise ValueError("low must not exceed high")
            return self

    schema = Schema(Range)
    schema.check_value("low", 20)  # alone, the field is fine
    with pytest.raises(InvalidValueError, match="low must not exceed high"):
        schema.build({"low": 20})
    assert schema.build({"low": 20, "high": 30}).low == 20


def test_a_validator_that_raises_something_else_is_still_an_invalid_value() -> None:
    class Picky(BaseModel):
        name: str = "ok"

        @field_validator("name")
        @classmethod
        def not_boom(cls, value: str) -> str:
            if value == "boom":
                raise LookupError("no such name")
            return value

    with pytest.raises(InvalidValueError, match="LookupError: no such name"):
        Schema(Picky).build({"name": "boom"})


def test_a_model_that_cannot_serve_defaults_is_refused_with_what_to_fix() -> None:
    class NoDefault(BaseModel):
        required: int

    class BadDefault(BaseModel):
        limit: int = Field("many", validate_default=False)  # type: ignore[assignment]

    with pytest.raises(TypeError, match="constructible without arguments"):
        Schema(NoDefault)
    with pytest.raises(TypeError, match=r"default of 'limit' fails"):
        Schema(BadDefault)


def test_without_a_model_there_are_no_fields_and_no_settings() -> None:
    schema = Schema(None)
    assert (schema.defaults, schema.empty_settings, schema.sections) == ({}, None, frozenset())
    assert not schema.is_field("anything")
    assert not schema.typed_keys(["anything"])

"""The typed model the test project's HOTCONFIG["MODEL"] points at."""

from __future__ import annotations

from pydantic import BaseModel


class Banner(BaseModel):
    text: str = "Welcome"


class Settings(BaseModel):
    greeting: str = "hello"
    items_per_page: int = 20
    banner: Banner = Banner()


class BadDefault(BaseModel):
    """A model whose default fails its own field's validation: the checks must say so."""

    items_per_page: int = "twenty"  # type: ignore[assignment]


class NeedsArgument(BaseModel):
    required: int

"""The shop's live settings: every field has a default, served until the store says otherwise."""

from __future__ import annotations

from pydantic import BaseModel


class Banner(BaseModel):
    text: str = "Welcome!"
    color: str = "#0a7"


class Model(BaseModel):
    default: str = "gpt-4o-mini"  # `hotconfig demo` changes it


class AI(BaseModel):
    model: Model = Model()


class Settings(BaseModel):
    greeting: str = "Hello"
    ai: AI = AI()
    banner: Banner = Banner()
    items_per_page: int = 20

"""hotconfig's FastAPI integration; it arrives in a later release."""

__all__: list[str] = []

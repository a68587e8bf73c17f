"""The lifespan that starts a HotConfig with the app and closes it with the app.

::

    hot = hotconfig_fastapi.lifespan(model=Settings, scopes=["global", "service:api"])
    app = FastAPI(lifespan=hot)


    @hot.on_change("feature.*")
    async def feature_changed(change: hotconfig.Change) -> None: ...  # on the app's loop

Composable both ways: ``lifespan(..., lifespan=your_lifespan)`` runs yours inside, with the
client already started; or enter ``hot(app)`` inside your own lifespan. It also works as an
``APIRouter(lifespan=...)``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Generic, TypeVar, overload

from pydantic import BaseModel

from hotconfig import Change, ClientClosedError, HotConfig, Status
from hotconfig.fleet import Reporter

__all__ = ["STATE_KEY", "AppLifespan", "Lifespan", "lifespan"]

log = logging.getLogger("hotconfig.fastapi")

ModelT = TypeVar("ModelT", bound=BaseModel)
ReceiverT = TypeVar("ReceiverT", bound=Callable[[Change], Any])
AppLifespan = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any] | None]]

STATE_KEY = "hotconfig"
"""The name of the client in the lifespan state (``request.state.hotconfig``) and on
``app.state``."""


class Lifespan(Generic[ModelT]):
    """Starts :attr:`config` when the app starts and closes it (if it made it) when it stops.

    Starting runs in a worker thread, so a slow or absent Redis never blocks the event loop:
    after ``start_timeout`` seconds the app serves model defaults (or the last-known-good
    file) and the client goes LIVE by itself once Redis answers.
    """

    def __init__(
        self,
        config: HotConfig[ModelT],
        *,
        owned: bool,
        start_timeout: float = 5.0,
        inner: AppLifespan | None = None,
    ) -> None:
        self.config = config
        self.start_timeout = start_timeout
        self._owned = owned
        self._inner = inner
        self._async_receivers: list[tuple[str, Callable[[Change], Any]]] = []

    def on_change(self, pattern: str = "*") -> Callable[[ReceiverT], ReceiverT]:
        """Register a change receiver for keys matching ``pattern`` (fnmatch).

        A plain function is registered at once and runs on the listener thread. An
        ``async def`` runs on the app's event loop: it is registered when the app starts
        (at import time there is no loop yet to name).
        """

        def register(receiver: ReceiverT) -> ReceiverT:
            if inspect.iscoroutinefunction(receiver):
                self._async_receivers.append((pattern, receiver))
            else:
                self.config.on_change(pattern)(receiver)
            return receiver

        return register

    def __call__(self, app: Any) -> AbstractAsyncContextManager[dict[str, Any]]:
        return self._run(app)

    @asynccontextmanager
    async def _run(self, app: Any) -> AsyncIterator[dict[str, Any]]:
        config = self.config
        if config.status is Status.CLOSED:
            raise ClientClosedError(
                "this lifespan's client was closed when its app stopped; make a new lifespan "
                "for a new run (build the app in a factory), or pass config= and close it yourself"
            )
        loop = asyncio.get_running_loop()
        for pattern, receiver in self._async_receivers:
            config.on_change(pattern, loop=loop)(receiver)
        live = await asyncio.to_thread(config.start, self.start_timeout)
        if not live:
            log.warning(
                "hotconfig: not live after %ss (%s); serving defaults while it keeps trying",
                self.start_timeout,
                config.status,
            )
        setattr(app.state, STATE_KEY, config)
        state: dict[str, Any] = {STATE_KEY: config}
        try:
            if self._inner is None:
                yield state
            else:
                async with self._inner(app) as inner_state:
                    yield {**(inner_state or {}), **state}
        finally:
            if self._owned:
                await asyncio.to_thread(config.close)

    # -- typed dependencies -------------------------------------------------------------------

    async def get_config(self) -> HotConfig[ModelT]:
        """A dependency: ``config: HotConfig[Settings] = Depends(hot.get_config)``."""
        return self.config

    async def get_settings(self) -> ModelT:
        """A dependency: the typed settings, one immutable object for the whole request."""
        settings = self.config.settings
        if settings is None:
            raise TypeError("get_settings needs a model: lifespan(model=YourSettings)")
        return settings


@overload
def lifespan(
    url: str | None = None,
    *,
    model: type[ModelT],
    start_timeout: float = 5.0,
    lifespan: AppLifespan | None = None,
    **options: Any,
) -> Lifespan[ModelT]: ...


@overload
def lifespan(
    *,
    config: HotConfig[ModelT],
    start_timeout: float = 5.0,
    lifespan: AppLifespan | None = None,
) -> Lifespan[ModelT]: ...


@overload
def lifespan(
    url: str | None = None,
    *,
    start_timeout: float = 5.0,
    lifespan: AppLifespan | None = None,
    **options: Any,
) -> Lifespan[Any]: ...


def lifespan(
    url: str | None = None,
    *,
    config: HotConfig[Any] | None = None,
    start_timeout: float = 5.0,
    lifespan: AppLifespan | None = None,
    **options: Any,
) -> Lifespan[Any]:
    """A lifespan for ``FastAPI(lifespan=...)`` that runs a :class:`hotconfig.HotConfig`.

    ``url`` and ``options`` are those of ``HotConfig`` (``model=``, ``scopes=``, ...); the
    client is made now (not started: that happens in each worker process, when its app starts)
    and closed at shutdown. Pass ``config=`` instead to use a client you made; it is started
    but not closed, that stays yours. ``lifespan=`` is the app's own lifespan, run inside.
    """
    if config is not None:
        if url is not None or options:
            raise TypeError("pass either config= or the HotConfig options, not both")
        return Lifespan(config, owned=False, start_timeout=start_timeout, inner=lifespan)
    health = bool(options.pop("health", True))
    made: HotConfig[Any] = HotConfig(url, health=False, **options)
    if health:
        # The fleet's reporter attaches from outside and says which framework runs the client.
        made.attach(Reporter(made, framework="fastapi"))
    return Lifespan(made, owned=True, start_timeout=start_timeout, inner=lifespan)

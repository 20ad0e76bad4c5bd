"""Teams adapter (botbuilder). Placeholder until the Teams issue lands: mounts nothing."""

from __future__ import annotations

from aiohttp import web

from adapters.runtime import Runtime


def mount(app: web.Application, runtime: Runtime) -> None:
    return None

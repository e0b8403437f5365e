"""Just enough of a Kubernetes API server for kopf to list and watch one custom resource.

kopf discovers resources (/api, /apis, /apis/<group>/<version>), lists the resource, then keeps
a watch stream open. This double serves exactly that for one namespaced kind, over loopback,
on an aiohttp server in its own thread (aiohttp comes with kopf). Tests change objects with
`put` / `remove`, which update the list and push ADDED/MODIFIED/DELETED to open watches.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from typing import Any

from aiohttp import web


class FakeKubeAPI:
    """One custom resource kind (namespaced), served at `url` until `close()`."""

    def __init__(self, group: str, version: str, kind: str, plural: str) -> None:
        self.group, self.version, self.kind, self.plural = group, version, kind, plural
        self.objects: dict[str, dict[str, Any]] = {}  # uid -> object
        self.requests: list[str] = []
        self.unknown: list[str] = []
        self._rv = 1
        self._watches: list[asyncio.Queue[dict[str, Any] | None]] = []
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-kube-api", daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread.start()
        self._started.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- test-facing, thread-safe ------------------------------------------------------------

    def put(self, obj: dict[str, Any]) -> None:
        """Create or update an object (ADDED or MODIFIED to watchers)."""
        self._call(self._put, copy.deepcopy(obj))

    def remove(self, obj: dict[str, Any]) -> None:
        """Delete an object (DELETED to watchers)."""
        self._call(self._remove, obj["metadata"]["uid"])

    def close(self) -> None:
        async def stop() -> None:
            for q in self._watches:
                q.put_nowait(None)
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _call(self, fn: Any, *args: Any) -> None:
        async def run() -> None:
            fn(*args)

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # -- inside the server loop ---------------------------------------------------------------

    def _put(self, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj.setdefault("apiVersion", f"{self.group}/{self.version}")
        obj.setdefault("kind", self.kind)
        obj["metadata"]["resourceVersion"] = str(self._rv)
        uid = obj["metadata"]["uid"]
        event_type = "MODIFIED" if uid in self.objects else "ADDED"
        self.objects[uid] = obj
        self._broadcast({"type": event_type, "object": obj})

    def _remove(self, uid: str) -> None:
        obj = self.objects.pop(uid, None)
        if obj is not None:
            self._rv += 1
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self._rv)}}
            self._broadcast({"type": "DELETED", "object": obj})

    def _broadcast(self, event: dict[str, Any]) -> None:
        for q in self._watches:
            q.put_nowait(copy.deepcopy(event))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/api", self._core_versions)
        app.router.add_get("/api/v1", self._core_resources)
        app.router.add_get("/apis", self._groups)
        app.router.add_get(f"/apis/{self.group}/{self.version}", self._resources)
        app.router.add_get(f"/apis/{self.group}/{self.version}/{self.plural}", self._list_or_watch)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._started.set()
        self._loop.run_forever()

    async def _core_versions(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})

    async def _core_resources(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        # kopf waits for the namespaces resource to exist before it starts any watcher
        namespaces = {
            "name": "namespaces",
            "singularName": "namespace",
            "namespaced": False,
            "kind": "Namespace",
            "verbs": ["get", "list", "watch"],
        }
        return web.json_response(
            {"kind": "APIResourceList", "groupVersion": "v1", "resources": [namespaces]}
        )

    async def _groups(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        gv = {"groupVersion": f"{self.group}/{self.version}", "version": self.version}
        return web.json_response(
            {
                "kind": "APIGroupList",
                "groups": [{"name": self.group, "versions": [gv], "preferredVersion": gv}],
            }
        )

    async def _resources(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        resource = {
            "name": self.plural,
            "singularName": self.kind.lower(),
            "namespaced": True,
            "kind": self.kind,
            "verbs": ["get", "list", "watch", "patch", "update"],
        }
        return web.json_response(
            {
                "kind": "APIResourceList",
                "groupVersion": f"{self.group}/{self.version}",
                "resources": [resource],
            }
        )

    async def _list_or_watch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        if request.query.get("watch") != "true":
            return web.json_response(
                {
                    "apiVersion": f"{self.group}/{self.version}",
                    "kind": f"{self.kind}List",
                    "metadata": {"resourceVersion": str(self._rv)},
                    "items": list(self.objects.values()),
                }
            )
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._watches.append(queue)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        try:
            while True:
                event = await queue.get()
                if event is None:
                    break
                await resp.write(json.dumps(event).encode() + b"\n")
        finally:
            self._watches.remove(queue)
        return resp

    async def _unknown(self, request: web.Request) -> web.Response:
        self.unknown.append(f"{request.method} {request.path_qs}")
        return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)

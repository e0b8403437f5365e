"""The subset of Kubernetes RBAC the test double evaluates, so that the same Role/RoleBinding
objects a test posts to a real kube-apiserver decide a 403 on the double too.

Covered: Role/ClusterRole `rules` with `apiGroups`, `resources` and `verbs` (and `"*"` in each)
and `resourceNames` (a rule naming objects grants only requests for one of them: a get of that
name, or a list/watch with the `metadata.name` field selector of that name, as kube-apiserver
decides), RoleBinding/ClusterRoleBinding with `User` subjects and a `roleRef` to a Role or
ClusterRole. Not covered (no test needs them): nonResourceURLs, groups, service accounts,
aggregation. A RoleBinding grants in its own namespace only, as on the real server.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

RBAC_PREFIX = "/apis/rbac.authorization.k8s.io/v1/"
KINDS = {  # plural -> (kind, namespaced)
    "roles": ("Role", True),
    "rolebindings": ("RoleBinding", True),
    "clusterroles": ("ClusterRole", False),
    "clusterrolebindings": ("ClusterRoleBinding", False),
}


def parse_rbac_path(path: str) -> tuple[str, str, str | None] | None:
    """(plural, namespace or "", name or None) of an RBAC API path, else None."""
    if not path.startswith(RBAC_PREFIX):
        return None
    parts = path[len(RBAC_PREFIX) :].strip("/").split("/")
    namespace = ""
    if len(parts) >= 3 and parts[0] == "namespaces":
        namespace, parts = parts[1], parts[2:]
    if not parts or parts[0] not in KINDS or len(parts) > 2:
        return None
    if KINDS[parts[0]][1] != bool(namespace):
        return None
    return parts[0], namespace, parts[1] if len(parts) == 2 else None


def _matches(allowed: Any, wanted: str) -> bool:
    return isinstance(allowed, list) and ("*" in allowed or wanted in allowed)


def _rule_allows(
    rule: Mapping[str, Any], verb: str, group: str, resource: str, name: str | None
) -> bool:
    names = rule.get("resourceNames")
    return (
        _matches(rule.get("apiGroups"), group)
        and _matches(rule.get("resources"), resource)
        and _matches(rule.get("verbs"), verb)
        and (not names or (name is not None and isinstance(names, list) and name in names))
    )


class Rbac:
    """RBAC objects by (plural, namespace, name), and the decision they make."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    def put(self, plural: str, namespace: str, body: Any) -> tuple[int, dict[str, Any]]:
        """Create an RBAC object (201), 409 if it exists, 422 without a name."""
        kind = KINDS[plural][0]
        name = (body.get("metadata") or {}).get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            return 422, _status(422, "Invalid", f"{kind}: metadata.name: Required value")
        doc = dict(body)
        doc["metadata"] = {**doc["metadata"], **({"namespace": namespace} if namespace else {})}
        with self._lock:
            if (plural, namespace, name) in self._objects:
                msg = f'{plural}.rbac.authorization.k8s.io "{name}" already exists'
                return 409, _status(409, "AlreadyExists", msg)
            self._objects[(plural, namespace, name)] = doc
        return 201, doc

    def remove(self, plural: str, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
        """Delete an RBAC object (200 with a Success Status), 404 if there is none."""
        with self._lock:
            doc = self._objects.pop((plural, namespace, name), None)
        if doc is None:
            msg = f'{plural}.rbac.authorization.k8s.io "{name}" not found'
            return 404, _status(404, "NotFound", msg)
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}

    def allows(
        self,
        user: str,
        verb: str,
        group: str,
        resource: str,
        namespace: str,
        name: str | None = None,
    ) -> bool:
        """Whether a binding to `user` grants `verb` on `group`/`resource` in `namespace`
        ("" for requests at the cluster scope, which only ClusterRoleBindings grant), for the
        object `name` (None: a request for no one object, which `resourceNames` never grant)."""
        with self._lock:
            objects = dict(self._objects)
        for (plural, ns, _), binding in objects.items():
            if plural == "clusterrolebindings" or (plural == "rolebindings" and ns == namespace):
                if not _binds(binding, user):
                    continue
                ref = binding.get("roleRef") or {}
                role_plural = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
                role_ns = "" if role_plural == "clusterroles" else ns
                role = objects.get((role_plural, role_ns, str(ref.get("name"))))
                rules = (role or {}).get("rules") or []
                if any(_rule_allows(r, verb, group, resource, name) for r in rules):
                    return True
        return False


def _binds(binding: Mapping[str, Any], user: str) -> bool:
    return any(
        s.get("kind") == "User" and s.get("name") == user for s in binding.get("subjects") or []
    )


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }

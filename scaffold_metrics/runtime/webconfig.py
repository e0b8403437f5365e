"""The Prometheus exporter-toolkit web config file: TLS and basic auth for `/metrics`.

Prometheus' own exporters read this file (`--web.config.file`), so cluster admins already know
it; `METRICS_WEB_CONFIG` (or `web_config=`) names it here. The subset a metrics endpoint needs is
supported: `tls_server_config` (`cert_file`, `key_file`, `client_ca_file`, `client_auth_type`,
`min_version`, `max_version`) and `basic_auth_users` (bcrypt hashes). Any other key, a key file
that does not load or a hash that is not bcrypt is refused at startup with the file and line,
so a typo never silently serves metrics in the clear. Certificates are re-read when their files
change (checked at most once a second, on new connections), as a cert-manager renewal needs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

log = logging.getLogger(__name__)

WEB_CONFIG_ENV = "METRICS_WEB_CONFIG"

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# exporter-toolkit keys this runtime does not implement: refused by name rather than ignored.
_UNSUPPORTED = {
    "tls_server_config": (
        "cert",
        "key",
        "cipher_suites",
        "curve_preferences",
        "prefer_server_cipher_suites",
        "client_allowed_sans",
    ),
    "": ("http_server_config", "rate_limit"),
}
_TLS_KEYS = (
    "cert_file",
    "key_file",
    "client_ca_file",
    "client_auth_type",
    "min_version",
    "max_version",
)
_BCRYPT = re.compile(r"\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}")
_RELOAD_CHECK_SECONDS = 1.0


class WebConfigError(ValueError):
    """The web config file is missing, not YAML, or holds a key or value we cannot honour."""


@dataclass(frozen=True)
class TlsSettings:
    """What `tls_server_config` asks for, with paths made absolute (relative to the file)."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_auth: ssl.VerifyMode = ssl.CERT_NONE
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion | None = None
    where: str = ""  # file:line of tls_server_config, for error messages


@dataclass(frozen=True)
class WebConfig:
    """A validated web config: TLS settings (None: plain HTTP) and basic auth users."""

    path: str
    tls: TlsSettings | None
    basic_auth_users: Mapping[str, bytes]


def web_config_path(web_config: str | None) -> str | None:
    """The web config file to use: `web_config`, else `$METRICS_WEB_CONFIG`, else none."""
    if web_config:
        return web_config
    return os.environ.get(WEB_CONFIG_ENV) or None


def load_web_config(path: str) -> WebConfig:
    """Read and validate the file at `path`; WebConfigError says what is wrong and where.

    PyYAML (a dependency of the `kubernetes` client, declared in the runtime extras) is
    imported here, not at module level: the scaffolder imports the runtime package too, and
    its own install has no PyYAML.
    """
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise WebConfigError(f"cannot read web config: {exc}: {path}") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", 0) + 1
        raise WebConfigError(f"web config is not valid YAML: {path}:{line}") from exc
    base = os.path.dirname(os.path.abspath(path))
    if root is None or (isinstance(root, yaml.ScalarNode) and root.value == ""):
        return WebConfig(path, None, {})
    top = _mapping(root, path, "the web config")
    _refuse_unknown(top, ("tls_server_config", "basic_auth_users"), _UNSUPPORTED[""], path, "")
    tls = None
    if "tls_server_config" in top:
        tls = _tls_settings(top["tls_server_config"], base, path)
    users: dict[str, bytes] = {}
    if "basic_auth_users" in top:
        _, node = top["basic_auth_users"]
        for user, (user_node, hash_node) in _mapping(node, path, "basic_auth_users").items():
            value = _string(hash_node, path, f"basic_auth_users.{user}")
            if not _BCRYPT.fullmatch(value):
                raise WebConfigError(
                    f"basic_auth_users.{user} is not a bcrypt hash (make one with "
                    f"`htpasswd -nBC 10 {user}` or python's bcrypt.hashpw): "
                    f"{path}:{user_node.start_mark.line + 1}"
                )
            users[user] = value.encode("ascii")
    config = WebConfig(path, tls, users)
    if tls is not None:
        build_tls_context(tls)  # a cert or key that does not load fails now
    return config


if TYPE_CHECKING:
    _Pairs = dict[str, tuple[yaml.Node, yaml.Node]]


def _mapping(node: yaml.Node, path: str, what: str) -> _Pairs:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise WebConfigError(f"{what} must be a mapping: {path}:{node.start_mark.line + 1}")
    pairs: _Pairs = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise WebConfigError(f"{what}: keys must be strings: {path}:{key.start_mark.line + 1}")
        if key.value in pairs:
            raise WebConfigError(
                f"{what}: duplicate key {key.value!r}: {path}:{key.start_mark.line + 1}"
            )
        pairs[key.value] = (key, value)
    return pairs


def _string(node: yaml.Node, path: str, what: str) -> str:
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        raise WebConfigError(f"{what} must be a string: {path}:{node.start_mark.line + 1}")
    return str(node.value)


def _refuse_unknown(
    pairs: _Pairs, known: tuple[str, ...], unsupported: tuple[str, ...], path: str, section: str
) -> None:
    prefix = f"{section}." if section else ""
    for name, (key_node, _) in pairs.items():
        line = key_node.start_mark.line + 1
        if name in unsupported:
            raise WebConfigError(
                f"web config key {prefix}{name} is not supported by operator-metrics "
                f"(supported: {', '.join(known)}): {path}:{line}"
            )
        if name not in known:
            raise WebConfigError(
                f"unknown web config key {prefix}{name} (known: {', '.join(known)}): {path}:{line}"
            )


def _tls_settings(pair: tuple[yaml.Node, yaml.Node], base: str, path: str) -> TlsSettings:
    key_node, node = pair
    fields = _mapping(node, path, "tls_server_config")
    _refuse_unknown(fields, _TLS_KEYS, _UNSUPPORTED["tls_server_config"], path, "tls_server_config")
    values = {
        name: (_string(v, path, f"tls_server_config.{name}"), k.start_mark.line + 1)
        for name, (k, v) in fields.items()
    }
    where = f"{path}:{key_node.start_mark.line + 1}"
    for required in ("cert_file", "key_file"):
        if not values.get(required, ("", 0))[0]:
            raise WebConfigError(f"tls_server_config needs {required}: {where}")

    def file(name: str) -> str:
        return os.path.join(base, values[name][0])

    def choice(name: str, options: Mapping[str, Any], default: str) -> Any:
        value, line = values.get(name, (default, 0))
        if value not in options:
            raise WebConfigError(
                f"tls_server_config.{name} {value!r} is not one of {', '.join(options)}: "
                f"{path}:{line}"
            )
        return options[value]

    if values.get("client_auth_type", ("", 0))[0] in ("RequestClientCert", "RequireAnyClientCert"):
        raise WebConfigError(
            f"tls_server_config.client_auth_type {values['client_auth_type'][0]} (a certificate "
            "that is not verified) is not supported: use VerifyClientCertIfGiven or "
            f"RequireAndVerifyClientCert: {path}:{values['client_auth_type'][1]}"
        )
    client_auth = choice("client_auth_type", _CLIENT_AUTH, "NoClientCert")
    client_ca = file("client_ca_file") if values.get("client_ca_file", ("", 0))[0] else None
    if client_ca is None and client_auth != ssl.CERT_NONE:
        raise WebConfigError(
            f"tls_server_config.client_auth_type needs client_ca_file to verify clients: {where}"
        )
    if client_ca is not None and client_auth == ssl.CERT_NONE:
        raise WebConfigError(
            "tls_server_config.client_ca_file is set but client_auth_type is NoClientCert: set "
            f"client_auth_type to RequireAndVerifyClientCert or VerifyClientCertIfGiven: {where}"
        )
    max_version = choice("max_version", _TLS_VERSIONS, "TLS13") if "max_version" in values else None
    return TlsSettings(
        cert_file=file("cert_file"),
        key_file=file("key_file"),
        client_ca_file=client_ca,
        client_auth=client_auth,
        min_version=choice("min_version", _TLS_VERSIONS, "TLS12"),
        max_version=max_version,
        where=where,
    )


def build_tls_context(tls: TlsSettings) -> ssl.SSLContext:
    """A server SSLContext for `tls`; WebConfigError when a file does not load."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = tls.min_version
    if tls.max_version is not None:
        ctx.maximum_version = tls.max_version
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(
            f"cannot load cert_file {tls.cert_file} with key_file {tls.key_file}: {exc}: "
            f"{tls.where}"
        ) from exc
    if tls.client_ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(
                f"cannot load client_ca_file {tls.client_ca_file}: {exc}: {tls.where}"
            ) from exc
    ctx.verify_mode = tls.client_auth
    return ctx


class ReloadingTlsContext:
    """The listening SSLContext, whose handshakes use the certificates currently on disk.

    Every handshake passes through the server-name callback, which hands the connection the
    newest context: rebuilt when a file's mtime, size or inode changed (a Kubernetes secret
    volume swaps a symlink). A rebuild that fails (a half-written renewal) keeps the previous
    certificates and logs a warning, so serving never stops over a rotation.
    """

    def __init__(self, tls: TlsSettings) -> None:
        self._tls = tls
        self._lock = threading.Lock()
        self._stamp = self._file_stamp()
        self._current = build_tls_context(tls)
        self._next_check = time.monotonic() + _RELOAD_CHECK_SECONDS
        self.listening = build_tls_context(tls)
        self.listening.sni_callback = self._on_client_hello

    def _file_stamp(self) -> tuple[tuple[int, int, int], ...]:
        stamps = []
        for name in (self._tls.cert_file, self._tls.key_file, self._tls.client_ca_file):
            if name is None:
                continue
            try:
                st = os.stat(name)
                stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                stamps.append((0, 0, 0))
        return tuple(stamps)

    def current(self) -> ssl.SSLContext:
        """The context for a new connection, re-read from disk when the files changed."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_check:
                return self._current
            self._next_check = now + _RELOAD_CHECK_SECONDS
            stamp = self._file_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._current = build_tls_context(self._tls)
                    log.info("reloaded TLS certificates from %s", self._tls.cert_file)
                except WebConfigError as exc:
                    log.warning("keeping the previous TLS certificates: %s", exc)
            return self._current

    def _on_client_hello(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: Any
    ) -> None:
        try:
            connection.context = self.current()
        except Exception:  # never fail a handshake over a reload; the old context serves it
            log.exception("TLS certificate reload failed")


class BasicAuth:
    """Checks `Authorization: Basic` headers against bcrypt hashes, caching the verdicts.

    bcrypt is slow on purpose (tens of milliseconds); Prometheus sends the same header on
    every scrape, so a verdict is kept (under a digest of the header, never the password) and
    only new headers pay for a hash. Unknown users cost a hash too, so timing tells nothing.
    """

    _CACHE_SIZE = 1024

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        self._cache: dict[bytes, bool] = {}
        self._lock = threading.Lock()
        self._dummy = next(iter(self._users.values()), b"")

    def cached(self, header: str | None) -> bool | None:
        """The verdict for `header` if known (None: call `check`); a missing header is False."""
        if not header:
            return False
        with self._lock:
            return self._cache.get(_digest(header))

    def check(self, header: str) -> bool:
        """Verify `header` with bcrypt (blocking: run it off the event loop) and cache it."""
        import bcrypt  # only deployments with basic_auth_users need the package

        ok = False
        credentials = _decode_basic(header)
        if credentials is not None:
            user, password = credentials
            hashed = self._users.get(user)
            try:
                ok = bcrypt.checkpw(password, hashed or self._dummy) and hashed is not None
            except ValueError:
                ok = False
        with self._lock:
            if len(self._cache) >= self._CACHE_SIZE:
                self._cache.clear()
            self._cache[_digest(header)] = ok
        return ok


def _digest(header: str) -> bytes:
    return hashlib.sha256(header.encode("latin-1", "replace")).digest()


def _decode_basic(header: str) -> tuple[str, bytes] | None:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return user.decode("utf-8", "replace"), password

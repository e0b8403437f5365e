"""The scaffolding pipeline: config → CRDs → plan → rendered files (all in memory).

`init` and `generate` both call `build_project`; they differ only in where the config comes
from, so the same CRDs always give the same files whichever command produced them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .config import ProjectConfig, config_path
from .crd import load_crds
from .errors import InputError, UsageError
from .install_source import install_requirement, installed_origin
from .metric_config import parse_metrics_config
from .monitoring import monitoring_files, stale_dashboards
from .paths import relative_path
from .plan import MetricsPlan, PlanOptions, plan_metrics
from .project_manifests import choose_service, manifest_files, shards_path
from .render import RenderedFile, render_python, render_template

REQUIREMENTS_FILE = "requirements.txt"
_ENTRY_WIRING = re.compile(
    r"\bpkg\.metrics\b|\bfrom\s+pkg\s+import\s+metrics\b|\bregister_kopf_metrics\b"
)
_IN_PROCESS_WIRING = re.compile(r"\bwiring\.(?:start|register_kopf)\(")
_KOPF_IMPORT = re.compile(r"^\s*(?:import\s+kopf\b|from\s+kopf\b)", re.MULTILINE)
_KOPF_REQUIREMENT = re.compile(r"^\s*kopf\s*(?:[\[<>=!~;@#]|$)", re.MULTILINE | re.IGNORECASE)
ENV_PORT = "METRICS_PORT"


@dataclass
class ProjectBuild:
    """Files to bring onto disk, the plan they came from, and notes for the user: `notes` are
    advice for the choices made at `init`; `plan_notes` say what the plan left out (the cap),
    which every regeneration repeats, as the plan may change with the CRDs; `retired` are
    generated files found on disk that the build no longer produces."""

    plan: MetricsPlan
    files: list[RenderedFile]
    owned_dirs: list[str]
    notes: list[str] = field(default_factory=list)
    plan_notes: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)


def _package_path(package: str) -> PurePosixPath:
    path = PurePosixPath(package)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise UsageError(f"package path {package!r} must be inside the project")
    for part in path.parts:
        if not part.isidentifier():
            raise UsageError(f"package path {package!r}: {part!r} is not a Python name")
    return path


def check_recorded_crds(root: Path, config: ProjectConfig) -> None:
    """Refuse CRD paths the config lists that no longer exist, pointing at the config entry
    and at `init --crd` (which updates it), since no flag named them."""
    path = config_path(root)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for crd in config.crds:
        if os.path.exists(os.path.normpath(root / crd)):
            continue
        line = next((n for n, text in enumerate(lines, 1) if crd in text), None)
        raise InputError(
            f"CRD file not found: {crd} (listed under `crds`)",
            path,
            line,
            hint="moved it? run `operator-metrics init --crd NEW_PATH`: it updates the config "
            "and keeps your other choices",
        )


def build_project(root: Path, config: ProjectConfig) -> ProjectBuild:
    """Load, plan and render everything `config` asks for, writing nothing."""
    loaded = load_crds(Path(os.path.normpath(root / p)) for p in config.crds)
    sources = {crd.name: relative_path(crd.file, root) for crd in loaded.crds}
    metrics = parse_metrics_config(config.extra.get("metrics"), config_path(root))
    options = PlanOptions(versions=config.versions, metrics=metrics)
    plan = plan_metrics(loaded.crds, options, sources)
    package = _package_path(config.package)
    import_path = ".".join(package.parts)
    source_list = sorted(set(sources.values()))
    files = _package_files(plan, package, source_list, config)
    notes = list(loaded.notes)
    plan_notes = [note for kind in plan.kinds if (note := kind.cap_note) is not None]
    files.extend(_entry_files(root, package, import_path, config, notes))
    requirements = _requirements_file(root, config, notes)
    if requirements is not None:
        files.append(requirements)
    files.extend(manifest_files(root, config, plan, notes))
    files.extend(monitoring_files(root, config, plan, source_list, notes))
    return ProjectBuild(
        plan=plan,
        files=files,
        owned_dirs=[str(package)],
        notes=notes,
        plan_notes=plan_notes,
        retired=stale_dashboards(root, config, files),
    )


def _package_files(
    plan: MetricsPlan, package: PurePosixPath, sources: list[str], config: ProjectConfig
) -> list[RenderedFile]:
    def generated(path: PurePosixPath, template: str, **context: object) -> RenderedFile:
        content = render_python(template, sources=sources, plan=plan, **context)
        return RenderedFile(str(path), content, "generated")

    files = [
        generated(package / "__init__.py", "metrics_init.py.j2"),
        generated(package / "kinds" / "__init__.py", "kinds_init.py.j2"),
        generated(package / "custom" / "__init__.py", "custom_init.py.j2"),
        generated(
            package / "wiring.py",
            "wiring.py.j2",
            port=config.port,
            namespaces=tuple(config.namespaces),
            host=config.host,
        ),
    ]
    if config.shards is not None:  # what the metrics StatefulSet runs
        files.append(
            generated(
                package / "__main__.py", "metrics_main.py.j2", import_path=".".join(package.parts)
            )
        )
    for kind in plan.kinds:
        files.append(
            generated(package / "kinds" / f"{kind.module}.py", "kind_metrics.py.j2", k=kind)
        )
        custom = render_python("custom_kind.py.j2", k=kind)
        files.append(RenderedFile(str(package / "custom" / f"{kind.module}.py"), custom, "user"))
    return files


def _entry_files(
    root: Path, package: PurePosixPath, import_path: str, config: ProjectConfig, notes: list[str]
) -> list[RenderedFile]:
    files: list[RenderedFile] = []
    parents = package.parents
    for parent in list(parents)[:-1]:
        init = root / parent / "__init__.py"
        if not init.exists():
            init_text = render_template("pkg_init.py.j2")
            files.append(RenderedFile(str(parent / "__init__.py"), init_text.encode(), "user"))
    main = root / config.main
    if main.is_file():
        text = main.read_text(encoding="utf-8", errors="replace")
        if not _ENTRY_WIRING.search(text):
            notes.append(_wiring_advice(config, import_path, is_kopf_entry(text)))
        elif config.shards is not None and _IN_PROCESS_WIRING.search(text):
            notes.append(
                f"note: {config.main} serves the metrics in the operator's process too: with "
                f"--shards the metrics StatefulSet serves them (python3 -m {import_path}); "
                "remove that call, or the operator's pod still lists and renders every object"
            )
    elif requires_kopf(root):
        # `kopf run handlers.py` needs no main.py, and a plain one would add a second watch.
        notes.append(
            f"note: {REQUIREMENTS_FILE} names kopf and there is no {config.main}: not creating "
            f"one; in the module kopf runs, add:\n"
            f"    from {import_path} import wiring\n"
            f"    wiring.register_kopf()  # serves /metrics on port {config.port} "
            f"({ENV_PORT} overrides) while kopf runs"
        )
    else:
        main_text = render_template("main.py.j2", import_path=import_path)
        files.append(RenderedFile(config.main, main_text.encode("utf-8"), "user"))
    return files


def requires_kopf(root: Path) -> bool:
    """True when the operator's requirements.txt names kopf."""
    path = root / REQUIREMENTS_FILE
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    return _KOPF_REQUIREMENT.search(text) is not None


def is_kopf_entry(text: str) -> bool:
    """True when an entry point imports kopf: kopf's watch feeds the metrics then."""
    return _KOPF_IMPORT.search(text) is not None


def _wiring_advice(config: ProjectConfig, import_path: str, kopf: bool) -> str:
    where = f"port {config.port} ({ENV_PORT} overrides)"
    if kopf:
        return (
            f"note: {config.main} is a kopf operator: let kopf's own watch feed the metrics "
            f"(register_kopf_metrics, no second list/watch); add these lines to it:\n"
            f"    from {import_path} import wiring\n"
            f"    wiring.register_kopf()  # serves /metrics on {where} while kopf runs"
        )
    return (
        f"note: {config.main} does not start the metrics server; add these lines to it:\n"
        f"    from {import_path} import wiring\n"
        f"    wiring.start()  # serves /metrics on {where} in the background"
    )


def entry_extra(root: Path, config: ProjectConfig) -> str:
    """The extra the operator's image needs: `kopf` for a kopf entry point, else `runtime`."""
    main = root / config.main
    if main.is_file():
        kopf = is_kopf_entry(main.read_text(encoding="utf-8", errors="replace"))
    else:
        kopf = requires_kopf(root)
    return "kopf" if kopf else "runtime"


def _requirements_file(root: Path, config: ProjectConfig, notes: list[str]) -> RenderedFile | None:
    """Create requirements.txt naming the runtime as this tool was installed (git URL, wheel
    or release range), or say what to add to an existing one."""
    path = root / REQUIREMENTS_FILE
    wanted = install_requirement(entry_extra(root, config), installed_origin())
    if not path.exists():
        content = render_template("requirements.txt.j2", requirement=wanted.line)
        if wanted.note:
            notes.append(f"note: {REQUIREMENTS_FILE}: {wanted.note}")
        return RenderedFile(REQUIREMENTS_FILE, content.encode("utf-8"), "user")
    if "operator-metrics" not in path.read_text(encoding="utf-8", errors="replace"):
        advice = f"\n  ({wanted.note})" if wanted.note else ""
        notes.append(
            f"note: {REQUIREMENTS_FILE} does not name operator-metrics; add this line so the "
            f"operator's image has the runtime:\n    {wanted.line}{advice}"
        )
    return None


__all__ = ["ProjectBuild", "build_project", "choose_service", "relative_path", "shards_path"]

"""A throwaway Python project on a local backend of its own, run by the real engine through the Automation API:
how the toolchain tests prove a plugin without touching any stack of the project."""
from __future__ import annotations

import sys
from pathlib import Path

from pulumi import automation as auto


def probe_stack(work: Path, project: str) -> auto.Stack:
    """Stack `probe` of the project in `work`, its state beside it; the interpreter running the test is the
    project's virtualenv, which has the provider SDKs."""
    state = work.parent / "state"
    state.mkdir()
    settings = auto.ProjectSettings(
        name=project,
        runtime=auto.ProjectRuntimeInfo(name="python", options={"virtualenv": sys.prefix}),
        backend=auto.ProjectBackend(url=f"file://{state}"),
    )
    env = {"PULUMI_BACKEND_URL": f"file://{state}", "PULUMI_CONFIG_PASSPHRASE": f"{project}-test"}
    return auto.create_stack("probe", work_dir=str(work), opts=auto.LocalWorkspaceOptions(project_settings=settings, env_vars=env))

"""The CLI a person types into starts fast: client verbs never load the server side."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_SIDE = ("asyncpg", "uvloop", "minio", "modelregistry.server", "modelregistry.storage")


def test_loading_the_cli_does_not_load_the_server_side() -> None:
    probe = (
        "import json, sys; import modelregistry.cli.main; "
        f"print(json.dumps([m for m in sys.modules if m.startswith({SERVER_SIDE!r})]))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(loaded.stdout) == []

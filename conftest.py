"""Repository-wide pytest set-up."""

import pytest

pytest_plugins = ["tests.integration.fixtures_apps"]


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    # tests never touch the user's real revision history
    import os

    os.environ["COMPOUND_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))

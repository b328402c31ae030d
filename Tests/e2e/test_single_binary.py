"""The executable is the whole server: copied alone into an empty folder, it serves every page, its
stylesheet, script and icon, and the OpenAPI document (all embedded, no resource bundle beside it),
and says which version and commit it is."""
import os
import re
import shutil
import subprocess
import tempfile
import uuid

import pytest

import servers
from conftest import API, BINARY, ROOT
from servers import Fletcher, send


@pytest.fixture
def alone(monkeypatch):
    """A Fletcher started from a copy of the executable in an empty folder (its SQLite file the
    default, in its working folder)."""
    folder = tempfile.mkdtemp(prefix="fletcher-alone-")
    copy = os.path.join(folder, "fletcher")
    shutil.copy2(BINARY, copy)
    assert os.listdir(folder) == ["fletcher"]
    monkeypatch.setattr(servers, "BINARY", copy)
    server = Fletcher("sqlite:fletcher.sqlite")
    yield server, copy
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


def test_a_copied_executable_serves_every_page_and_the_spec(alone):
    server, copy = alone
    port = server.port
    # No resource bundle is looked for: the build folder's path to one is not in the executable
    # (on this machine the build folder is in reach, so serving alone would not show it).
    with open(copy, "rb") as executable:
        contents = executable.read()
    for bundle in [b"fletcher_FletcherWeb.resources", b"fletcher_FletcherAPI.resources"]:
        assert bundle not in contents, bundle
    api = API(server.base)
    dataset, ids = api.submit([("extract", False), ("report", True)], [(0, 1)])

    status, content_type, body, _ = send(port, "GET", "/spec")
    assert status == 200 and "yaml" in content_type
    with open(os.path.join(ROOT, "Sources", "FletcherAPI", "openapi.yaml"), "rb") as document:
        assert body == document.read()

    status, _, page, _ = send(port, "GET", "/login")
    assert status == 200
    # Every asset the pages link to is served, byte for byte the repository's file.
    linked = set(re.findall(rb'/assets/([a-z.]+\.(?:css|js|svg))\?v=', page))
    assert linked >= {b"fletcher.css", b"fletcher.js", b"favicon.svg"}
    for name in linked:
        status, content_type, body, _ = send(port, "GET", f"/assets/{name.decode()}")
        assert status == 200, name
        with open(os.path.join(ROOT, "Sources", "FletcherWeb", "Assets", name.decode()), "rb") as asset:
            assert body == asset.read(), name

    # The pages, signed in.
    status, _, _, _ = send(port, "GET", "/swagger")
    assert status == 200
    # A session's cookie is its API token (WebSessions).
    cookie = f"fletcher_session={api.token}"
    for path in ["/", f"/plan/{dataset}", f"/plan/{dataset}/product/{ids[1]}", "/attention", "/?q=extract",
                 f"/plan/{uuid.uuid4()}"]:
        status, content_type, body, _ = send(port, "GET", path, headers={"Cookie": cookie})
        assert content_type.startswith("text/html"), path
        assert status == (404 if path.startswith("/plan/") and dataset not in path else 200), path
        assert b"fletcher.css" in body, path
    # The plan's drawing (Graphviz, linked at start-up) is on its page.
    status, _, body, _ = send(port, "GET", f"/plan/{dataset}", headers={"Cookie": cookie})
    assert b"<svg" in body


def test_the_executable_says_its_version_and_commit():
    out = subprocess.run([BINARY, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    found = re.fullmatch(r"\d+\.\d+\.\d+ \(commit ([0-9a-f]{12})(-dirty)?\)", out)
    assert found, out
    # A commit of this repository (the one the checkout it was built in was at).
    known = subprocess.run(["git", "-C", ROOT, "cat-file", "-e", f"{found.group(1)}^{{commit}}"], capture_output=True)
    assert known.returncode == 0, f"{out}: no such commit here"

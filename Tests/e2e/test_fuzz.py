"""Fletcher's contract under generated and hostile input: schemathesis runs every operation of
/spec against a live server (bounded, so the test command stays a few minutes), then hand-made
malformed requests. Every answer must be a documented, schema-conforming one; no 5xx."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from conftest import API
from servers import Fletcher, send

EXAMPLES = os.environ.get("FLETCHER_FUZZ_EXAMPLES", "60")


@pytest.fixture(scope="module")
def server():
    folder = tempfile.mkdtemp(prefix="fletcher-fuzz-")
    fletcher = Fletcher(f"sqlite:{folder}/fuzz.sqlite",
                        extra_env={"MAX_BODY_BYTES": str(1 << 20), "HEADER_TIMEOUT_S": "1", "IDLE_TIMEOUT_S": "2"})
    yield fletcher
    fletcher.stop()
    shutil.rmtree(folder, ignore_errors=True)


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_schema(server):
    api = API(server.base)
    # Something to find: a plan whose ids the generated requests may hit.
    api.submit([("fuzz source", True), ("fuzz child", True)], edges=[(0, 1)], extra={"fuzz": True})
    st = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    command = [st, "run", server.base + "/spec", "--url", server.base,
               "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                           "response_schema_conformance,response_headers_conformance",
               "--max-examples", EXAMPLES, "--header", f"Authorization: Bearer {api.token}",
               "--suppress-health-check", "all", "--seed", "42", "--workers", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    summary = "\n".join(result.stdout.splitlines()[-40:])
    print(summary)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


@pytest.mark.parametrize("name, body", [
    ("malformed JSON", b'{"dataset": {"id": '),
    ("wrong types", json.dumps({"dataset": {"id": 42}, "data_products": "no", "dependencies": {}}).encode()),
    ("huge numbers", json.dumps({"dataset": {"id": str(uuid.uuid4()), "extra": {"n": 10 ** 400}},
                                 "data_products": [], "dependencies": []}).encode()),
    ("deep nesting", b'{"dataset": {"id": "' + str(uuid.uuid4()).encode() + b'", "extra": ' + b"[" * 5000 + b"]" * 5000
     + b'}, "data_products": [], "dependencies": []}'),
    ("invalid UTF-8", b'{"dataset": {"id": "\xff\xfe"}, "data_products": [], "dependencies": []}'),
    ("empty body", b""),
    ("a JSON scalar", b"17"),
])
def test_hostile_bodies_get_a_4xx_problem(server, name, body):
    api = API(server.base)
    status, content_type, payload, _ = send(server.port, "POST", "/api/plan", body, api.token,
                                            {"Content-Type": "application/json"})
    assert 400 <= status < 500, (name, status, payload[:300])
    assert content_type == "application/problem+json", (name, content_type)
    problem = json.loads(payload)
    assert problem["status"] == status and problem["detail"]


def test_an_oversized_body_is_refused_with_413_before_it_is_read(server):
    api = API(server.base)
    body = b'{"dataset": {"id": "' + str(uuid.uuid4()).encode() + b'", "extra": "' + b"x" * (2 << 20) + b'"}}'
    status, content_type, payload, _ = send(server.port, "POST", "/api/plan", body, api.token,
                                            {"Content-Type": "application/json"})
    assert status == 413 and content_type == "application/problem+json", (status, payload[:200])
    # Also without a Content-Length (chunked): counted as it arrives.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", "/api/plan")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Authorization", f"Bearer {api.token}")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    try:
        for _ in range(40):
            chunk = b"x" * (64 << 10)
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    response = connection.getresponse()
    assert response.status == 413
    connection.close()


def closed_within(sock, seconds):
    """Seconds until the server closes `sock` (reading whatever it sends), or None after `seconds`."""
    sock.settimeout(seconds)
    started = time.time()
    try:
        while sock.recv(65536):
            pass
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    return time.time() - started


def test_a_client_that_never_finishes_its_headers_is_disconnected(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: fletcher\r\nX-Slow: ")   # and nothing more
        elapsed = closed_within(sock, 10)
        assert elapsed is not None and elapsed < 5, "HEADER_TIMEOUT_S=1 should close it"


def test_an_idle_connection_is_closed_after_its_answer(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: fletcher\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        elapsed = closed_within(sock, 10)
        assert elapsed is not None and elapsed < 5

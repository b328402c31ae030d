"""The login throttle of a running server counts failures by service name and client address: a
stranger guessing a service's key from one address is paused, while the service's real holders on
another address still log in (both addresses on the loopback network, 127.0.0.2 and 127.0.0.1)."""
import http.client
import json
import tempfile

from conftest import KEY
from servers import Fletcher


def login(port, key, source):
    """POST /api/authenticate as service `e2e` from the loopback address `source`: the status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    connection.request("POST", "/api/authenticate", body=json.dumps({"service": "e2e", "key": key}),
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, response.getheader("Retry-After")


def test_a_guesser_pauses_only_its_own_address():
    folder = tempfile.mkdtemp(prefix="fletcher-throttle-")
    server = Fletcher(f"sqlite:{folder}/fletcher.sqlite")
    try:
        guesses = [login(server.port, "wrong-key", "127.0.0.2") for _ in range(7)]
        assert [status for status, _ in guesses[:5]] == [401] * 5, guesses
        assert all(status == 429 and retry for status, retry in guesses[5:]), guesses
        # The real holder, elsewhere, is not locked out; the guesser still is, even with the key.
        assert login(server.port, KEY, "127.0.0.1")[0] == 200
        assert login(server.port, KEY, "127.0.0.2")[0] == 429
    finally:
        server.stop()

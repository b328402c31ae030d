"""A webhook endpoint on loopback for the webhook tests: records every request (path, headers, raw
body, arrival time) and answers each as a script says (status, delay, or hang until released)."""
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    path: str
    headers: dict          # lower-case names
    body: bytes
    time: float
    status: int = None     # what it was answered (None while unanswered or when the caller left)

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def id(self):
        return self.headers.get("webhook-id")


@dataclass
class Answer:
    status: int = 200
    delay: float = 0.0
    hold: threading.Event = None    # when given, the answer waits until it is set
    headers: dict = field(default_factory=dict)


class Receiver:
    """`respond(request) -> Answer` scripts the answers (default: 200 at once). `received` lists every
    request in arrival order; `delivered` those answered 2xx, in the order they were answered."""

    def __init__(self, respond=None):
        self.lock = threading.Lock()
        self.received = []
        self.delivered = []
        self.respond = respond or (lambda request: Answer())
        self.holds = []             # every hold handed out, released on close
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                with receiver.lock:
                    receiver.received.append(request)
                answer = receiver.respond(request)
                if answer.hold is not None:
                    with receiver.lock:
                        receiver.holds.append(answer.hold)
                    answer.hold.wait()
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                with receiver.lock:
                    request.status = answer.status
                    if 200 <= answer.status < 300:
                        receiver.delivered.append(request)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def requests(self):
        with self.lock:
            return list(self.received)

    def deliveries(self):
        """The requests answered 2xx, in the order they were answered."""
        with self.lock:
            return list(self.delivered)

    def close(self):
        with self.lock:
            holds = list(self.holds)
        for hold in holds:
            hold.set()
        self.server.shutdown()
        self.server.server_close()

"""The HTTP side of the stand-in compute platforms on loopback (chaos_platform.py,
observability.py): a quiet request handler answering JSON, served on a free port."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JSONHandler(BaseHTTPRequestHandler):
    """Logs nothing, and answers `body` as JSON; a client gone before the answer is no error."""

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


def serve_platform(platform, handler):
    """Serves `handler` on a free loopback port, in threads of its own, and gives `platform` its
    `server`, its trigger `url` (/jobs) and its `cancel_url` (/cancel)."""
    platform.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    platform.server.daemon_threads = True
    port = platform.server.server_address[1]
    platform.url = f"http://127.0.0.1:{port}/jobs"
    platform.cancel_url = f"http://127.0.0.1:{port}/cancel"
    threading.Thread(target=platform.server.serve_forever, daemon=True).start()

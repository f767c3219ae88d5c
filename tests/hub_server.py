"""A stand-in for the Hugging Face Hub API on 127.0.0.1: repo creation, card validation, preupload
and commit (every file uploaded inline), enough for `HfApi.create_repo` and `upload_folder`."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}  # path -> content of the last commit
        self.repos: list[dict] = []
        self.authorizations: set[str] = set()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._reply(404, {"error": "not here"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                hub.authorizations.add(self.headers.get("authorization", ""))
                if self.path == "/api/repos/create":
                    repo = json.loads(body)
                    hub.repos.append(repo)
                    return self._reply(200, {"url": f"{hub.url}/datasets/{repo['organization']}/{repo['name']}"})
                if self.path == "/api/validate-yaml":
                    return self._reply(200, {})
                if "/preupload/" in self.path:
                    files = json.loads(body)["files"]
                    return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                        "shouldIgnore": False} for f in files]})
                if "/commit/" in self.path:  # /api/datasets/<org>/<name>/commit/<revision>
                    repo = "/".join(self.path.split("/")[3:5])
                    for line in body.decode().splitlines():
                        entry = json.loads(line)
                        if entry["key"] == "file":
                            hub.files[entry["value"]["path"]] = base64.b64decode(entry["value"]["content"])
                    return self._reply(200, {"commitUrl": f"{hub.url}/datasets/{repo}/commit/1", "commitOid": "a" * 40})
                return self._reply(404, {"error": self.path})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 (real HTTP, real JSON).

Each POST to /v1/chat/completions takes the next step of the script:
  {"tool": name, "args": {...}}            a well-formed tool call
  {"tool": name, "raw_args": "not json"}   a malformed one
  {"content": "prose"}                     no tool call at all
  {"status": 500}                          a provider error
Requests are kept (with headers) for assertions.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLMServer:
    def __init__(self, script: list[dict], usage: tuple[int, int] = (1000, 50), repeat_last: bool = False,
                 cycle: bool = False, cache_n: int | None = None):
        self.script = list(script)
        self.cache_n = cache_n  # llama.cpp-style `timings.cache_n` (prompt tokens from the server's cache)
        self.cycle = cycle
        self.usage = usage
        self.repeat_last = repeat_last
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep test output clean
                pass

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                if not server.script:
                    self._send(500, {"error": {"message": "script exhausted", "type": "server_error"}})
                    return
                step = server.script[0] if (server.repeat_last and len(server.script) == 1) else server.script.pop(0)
                if server.cycle:
                    server.script.append(step)
                if "status" in step:
                    self._send(step["status"], {"error": {"message": "scripted failure", "type": "server_error"}})
                    return
                message = {"role": "assistant", "content": step.get("content")}
                if "tool" in step:
                    args = step.get("raw_args", json.dumps(step.get("args", {})))
                    message["tool_calls"] = [{"id": f"call_{len(server.requests)}", "type": "function",
                                              "function": {"name": step["tool"], "arguments": args}}]
                self._send(200, {
                    "id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion", "created": 0,
                    "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "message": message,
                                 "finish_reason": "tool_calls" if "tool" in step else "stop"}],
                    "usage": {"prompt_tokens": server.usage[0], "completion_tokens": server.usage[1],
                              "total_tokens": sum(server.usage)},
                    **({"timings": {"cache_n": server.cache_n}} if server.cache_n is not None else {})})

            def _send(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.api_base = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeLLMServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

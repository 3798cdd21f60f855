"""Fixtures for the generation tests: tiny models, a small local BEIR folder, a local completions server."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from generate_helpers import WORDS, make_docs, save_random_llama, save_successor_llama

from inpars.data import Query


@pytest.fixture(scope="package", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a busy machine waiting threads cost more than the work."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def random_lm(tmp_path_factory) -> Path:
    return save_random_llama(tmp_path_factory.mktemp("random-llama"))


@pytest.fixture(scope="session")
def successor_lm(tmp_path_factory) -> Path:
    """After any token it writes 'what is this?' and a newline (one piece '?\\n'), then 'the'."""
    chain = {"*": "what", "what": "is", "is": "this", "this": "?\n", "?\n": "the"}
    return save_successor_llama(tmp_path_factory.mktemp("successor-llama"), chain)


@pytest.fixture(scope="session")
def tiny_beir(tmp_path_factory) -> Path:
    """A BEIR folder with 60 documents, a train split (12 queries) and a test split (8 queries)."""
    from inpars.io import write_beir_folder, write_qrels_tsv

    folder = tmp_path_factory.mktemp("tiny-beir")
    docs = make_docs(60)
    queries = [Query(f"q{i}", f"what is {WORDS[i]} {WORDS[i + 1]}") for i in range(20)]
    train = {f"q{i}": {f"d{i:03d}": 1} for i in range(12)}
    test = {f"q{i}": {f"d{i:03d}": 2, f"d{i + 20:03d}": 1} for i in range(12, 20)}
    write_beir_folder(folder, docs, queries, test, split="test")
    write_qrels_tsv(folder / "qrels" / "train.tsv", train)
    return folder


class CompletionServer:
    """A real HTTP server on 127.0.0.1 answering /v1/completions the way vLLM's server does, deterministically.

    The completion is 'about' followed by the first three words after the last 'Document:' of the prompt,
    one token per word, then a newline token; log-probs are -0.1, -0.2, ... ``fail`` holds status codes to
    answer before succeeding; every request's Authorization header is recorded.
    """

    def __init__(self) -> None:
        self.fail: list[int] = []
        self.html = 0
        """How many requests to answer 200 with an HTML page (a proxy's, say) before answering properly."""
        self.authorizations: list[str | None] = []
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output quiet
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.authorizations.append(self.headers.get("Authorization"))
                    server.bodies.append(body)
                    status = server.fail.pop(0) if server.fail else 200
                if self.path != "/v1/completions":
                    status = 404
                with server.lock:
                    html = status == 200 and server.html > 0
                    server.html -= html
                if html:
                    page = (
                        b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>upstream starting</body></html>"
                    )
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                if status != 200:
                    self._send(
                        status, {"error": {"message": f"status {status}; auth was {self.headers.get('Authorization')}"}},
                        {"Retry-After": "0"},
                    )
                    return
                self._send(200, server.complete(body))

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def complete(body: dict) -> dict:
        prompt = body["prompt"]
        words = prompt.rsplit("Document:", 1)[-1].split()[:3]
        tokens = [" about"] + [f" {w}" for w in words] + ["\n"]
        limit = body["max_tokens"]
        finish = "stop" if len(tokens) <= limit else "length"
        tokens = tokens[:limit]
        text = "".join(tokens).split("\n", 1)[0]
        logprobs = None
        if body.get("logprobs") is not None:
            logprobs = {
                "tokens": tokens,
                "token_logprobs": [-0.1 * (i + 1) for i in range(len(tokens))],
                "top_logprobs": None,
                "text_offset": [],
            }
        return {
            "id": "cmpl-test",
            "object": "text_completion",
            "model": body["model"],
            "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish}],
        }


@pytest.fixture
def completion_server():
    server = CompletionServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()

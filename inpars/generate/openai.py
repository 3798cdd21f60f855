"""Query generation through any OpenAI-compatible ``/v1/completions`` endpoint (OpenAI, ``vllm serve``, ...).

Each prompt is one request (``stop: ["\\n"]``, ``logprobs: 1``, its own ``seed``), up to ``concurrency`` in
flight at once. Answers 429 and 5xx, timeouts and dropped connections are retried with exponential backoff
(or the server's ``Retry-After``). The API key is read from the environment variable named in the config and
sent only in the ``Authorization`` header; it is never logged or written, and is masked in error messages.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar

from inpars.checks import check_float_fields, check_range
from inpars.errors import InparsError, require
from inpars.generate.base import Generation, GenerationRequest, TokenizerOps, from_completion_choice, truncate_words
from inpars.models import resolve

logger = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 429}
MAX_WAIT = 60.0


@dataclass(frozen=True)
class OpenAIOptions:
    """The ``generate.openai`` block: what only this backend reads."""

    tokenizer: str | None = None
    """A transformers tokenizer (id or folder) to truncate documents and measure prompts; None: words."""
    api_base: str = "https://api.openai.com/v1"
    """Any OpenAI-compatible server, e.g. http://localhost:8000/v1 for 'vllm serve'."""
    api_key_env: str = "OPENAI_API_KEY"
    """The environment variable that holds the API key (the key is never written anywhere)."""
    concurrency: int = 8
    """Requests in flight at once."""
    max_retries: int = 5
    """Retries of a request answered 429 or 5xx, or cut off, before giving up."""
    retry_wait: float = 1.0
    """Seconds before the first retry, doubled at each further one (or the server's Retry-After)."""
    request_timeout: float = 120.0
    """Seconds to wait for one answer."""

    runtime_only: ClassVar[tuple[str, ...]] = (
        "api_base",
        "api_key_env",
        "concurrency",
        "max_retries",
        "retry_wait",
        "request_timeout",
    )
    """Where and how fast queries come, not what they are (the tokenizer decides truncation, so it is not here)."""

    def __post_init__(self) -> None:
        check_float_fields(self)
        check_range(self, ("concurrency",), 1)
        check_range(self, ("max_retries", "retry_wait"), 0)
        check_range(self, ("request_timeout",), 0, strict=True)


class OpenAIGenerator(TokenizerOps):
    name = "openai"

    def __init__(self, model: str, options: OpenAIOptions | None = None, context_length: int | None = None) -> None:
        httpx = require("httpx", "api")
        options = options or OpenAIOptions()
        self.model_name = model
        self.api_base = options.api_base.rstrip("/")
        self.concurrency = options.concurrency
        self.max_retries = options.max_retries
        self.retry_wait = options.retry_wait
        self._secret = os.environ.get(options.api_key_env) or ""
        if not self._secret:
            logger.info("no API key in $%s; requests go without one (fine for a local server)", options.api_key_env)
        headers = {"Authorization": f"Bearer {self._secret}"} if self._secret else {}
        self._client = httpx.Client(base_url=self.api_base, headers=headers, timeout=options.request_timeout)
        self._httpx = httpx
        self.api_key_env = options.api_key_env
        self.max_length = context_length
        if options.tokenizer:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(resolve(options.tokenizer))
        else:
            logger.info(
                "no tokenizer configured for %s: documents are truncated by words and prompt lengths are not checked", model
            )

    @classmethod
    def from_config(cls, config) -> OpenAIGenerator:
        return cls(config.model, config.openai, context_length=config.context_length)

    def truncate(self, text: str, max_tokens: int) -> str:
        return super().truncate(text, max_tokens) if self.tokenizer is not None else truncate_words(text, max_tokens)

    def prompt_length(self, request: GenerationRequest) -> int | None:
        return super().prompt_length(request) if self.tokenizer is not None else None

    def close(self) -> None:
        self._client.close()

    def _mask(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    # -------------------------------------------------------------------------------------- requests

    def generate(
        self, requests: Sequence[GenerationRequest], max_new_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0
    ) -> list[Generation]:
        if not requests:
            return []
        bodies = [
            {
                "model": self.model_name, "prompt": r.prefix + r.suffix, "max_tokens": max_new_tokens, "temperature": temperature,
                "top_p": top_p, "stop": ["\n"], "logprobs": 1, "seed": r.seed, "n": 1,
            }
            for r in requests
        ]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(bodies))) as pool:
            return list(pool.map(self._complete, bodies))

    def _complete(self, body: dict) -> Generation:
        url = f"{self.api_base}/completions"
        for attempt in range(self.max_retries + 1):
            wait = self.retry_wait * 2**attempt
            try:
                response = self._client.post("/completions", json=body)
            except self._httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    data = _json_or_none(response)
                    if data is not None:
                        return self._parse(data, url)
                    # A proxy or a server still starting may answer 200 with a page: retried like a 5xx.
                    kind = response.headers.get("content-type", "no content type")
                    problem = f"HTTP 200 with a body that is not JSON ({kind}): {response.text[:120]!r}"
                else:
                    problem = f"HTTP {response.status_code}: {response.text[:300]}"
                    if response.status_code in (401, 403):
                        raise InparsError(
                            f"{url} refused the request ({self._mask(problem)}); check the API key in ${self.api_key_env}"
                        )
                    if response.status_code not in RETRY_STATUS and response.status_code < 500:
                        raise InparsError(f"{url} rejected the request ({self._mask(problem)})")
                wait = _retry_after(response.headers.get("retry-after"), wait)
            if attempt == self.max_retries:
                raise InparsError(
                    f"{url} failed {attempt + 1} times, last: {self._mask(problem)}; "
                    "raise generate.openai.max_retries or check the server"
                )
            wait = min(wait, MAX_WAIT)
            logger.warning("%s: %s; retry %d of %d in %.1fs", url, self._mask(problem)[:120], attempt + 1, self.max_retries, wait)
            time.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _parse(self, data: dict, url: str) -> Generation:
        try:
            choice = data["choices"][0]
        except (KeyError, IndexError, TypeError):
            raise InparsError(f"{url} answered without choices; is it an OpenAI-compatible completions endpoint?") from None
        return from_completion_choice(choice, url)


def _json_or_none(response) -> dict | list | None:
    """The body as JSON, or None when it is not JSON (an HTML page, a truncated answer)."""
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(header: str | None, default: float) -> float:
    """The server's Retry-After in seconds when it gives one as a number, else ``default``."""
    try:
        return max(0.0, float(header)) if header else default
    except ValueError:
        return default

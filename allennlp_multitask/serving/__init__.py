"""
`allennlp serve`: a model archive's multitask predictor over HTTP, with dynamic batching across requests.

The stack is FastAPI on uvicorn: a standard, maintained ASGI framework and server, with OpenAPI built in. The
batching that serving libraries offer (e.g. LitServe's) is ~100 lines of asyncio here (`batcher.py`), so no
serving framework is needed. The modules that import FastAPI or uvicorn (`_app`, `_requests`, `_server`; the
`serve` extra) are private, which `--include-package allennlp_multitask` does not import (AllenNLP skips a
package's private modules): without the extra, everything but `allennlp serve` works.
"""

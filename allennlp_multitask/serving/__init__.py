"""
`allennlp serve`: a model archive's multitask predictor over HTTP, with dynamic batching across requests.

The stack is FastAPI on uvicorn: a standard, maintained ASGI framework and server, with OpenAPI built in. The
batching that serving libraries offer (e.g. LitServe's) is ~100 lines of asyncio here (`batcher.py`), so no
serving framework is needed. These modules import FastAPI: install the `serve` extra.
"""

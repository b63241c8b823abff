"""``xlm-onnx serve``: an HTTP inference server with dynamic batching (the ``[serve]`` extra).

One process holds one model; the routes call the same task steps as the Python API (see
``jobs``), so answers equal the API's. Modules: ``cli`` (options, start; imports nothing of the
extra until it runs), ``app`` (routes, errors, auth), ``schemas`` (bodies ↔ API arguments),
``batcher`` (dynamic batching, bounded queue), ``jobs`` (the API's steps per task),
``metrics`` (Prometheus), ``root`` (``POST /`` as TEI / the HF Inference API), ``messages`` (the
API's messages in HTTP field names), ``responses`` (orjson answers), ``timing`` (refusal times),
``shutdown`` (bounded SIGTERM drain), ``listen`` (the socket), ``workers`` (``--workers``),
``ray_serve`` (the app as a Ray Serve deployment), ``process`` (a server child process).
"""

"""``xlm-onnx serve``: an HTTP inference server with dynamic batching (the ``[serve]`` extra).

One process holds one model; the routes call the same task steps as the Python API (see
``jobs``), so answers equal the API's. Modules: ``cli`` (options, start; imports nothing of the
extra until it runs), ``app`` (the route table, lifespan), ``endpoints`` (a route as data, the key
check and the error table around its handler), ``state`` (what every route shares),
``task_routes`` (``POST /<task>`` for every registered task, checked against its parameter
schema), ``handlers`` (probes, ``/info``, ``/metrics``, ``/tokenize``), ``adapters`` (TEI, the HF
Inference API and OpenAI, translated to a task's request and answer), ``pipeline`` (admit,
prepare, batch), ``body`` (size limits, JSON), ``failures`` (exceptions → statuses and messages in
a route's words), ``caveats`` (``X-Warnings``), ``openapi``, ``described`` (``/openapi.json``,
``/docs``) and ``reference`` (the docs' HTTP page), ``schema`` (JSON Schema pieces), ``batcher``
(dynamic batching, bounded queue), ``jobs`` (the API's steps per task), ``metrics``
(Prometheus), ``responses`` (orjson answers), ``timing`` (refusal times), ``shutdown`` (bounded
SIGTERM drain), ``listen`` (the socket), ``workers`` (``--workers``), ``ray_serve`` (the app as a
Ray Serve deployment), ``process`` (a server child process).
"""

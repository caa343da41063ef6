"""``artery-edge serve``: the device as a service. A page with the live view and an upload
form, and an HTTP API, over the same ``Classifier`` and camera loop as ``infer``.

``options`` and ``live`` need no web library; ``app`` and ``server`` need Tornado (the ``serve`` extra).
"""

from artery_edge.edge.serve.options import ServeOptions
from artery_edge.edge.serve.server import serve

__all__ = ["ServeOptions", "serve"]

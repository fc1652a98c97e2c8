"""Request and response bodies of the HTTP API, by resource.

Response models are built from domain objects (``ContainerOut.from_record(record)``) and
render exactly the JSON clients have always received: the same keys in the same order,
``null`` where a value is unset, timestamps as ``datetime.isoformat()``."""

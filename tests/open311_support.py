"""Open311 GeoReport v2 as its specification lists the fields of each document, for the
conformance tests (services/complaints/tests/test_open311.py and
tests/integration/test_open311.py): written from the specification, not from the code."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

# GET services: each service.
SERVICE = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
SERVICE_TYPES = {"realtime", "batch", "blackbox"}
# GET services/{code}: the definition, each attribute, each value of a list attribute.
DEFINITION = {"service_code", "attributes"}
ATTRIBUTE = {"variable", "code", "datatype", "required", "datatype_description", "order", "description"}
DATATYPES = {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}
VALUE = {"key", "name"}
# POST requests: the answer's one item (`token` where the id comes later; Sinergi gives both).
POSTED = {"service_request_id", "service_notice", "account_id"}
# GET tokens/{token}.
TOKEN = {"service_request_id", "token"}
# GET requests and GET requests/{id}: each request.
REQUEST = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}
STATUSES = {"open", "closed"}
# Errors: a list of these.
ERROR = {"code", "description"}
# Service discovery.
DISCOVERY = {"changeset", "contact", "key_service", "endpoints"}
ENDPOINT = {"specification", "url", "changeset", "type", "formats"}
# The XML root element and the element of each item, per document.
XML_ROOTS = {
    "services": ("services", "service"),
    "requests": ("service_requests", "request"),
    "errors": ("errors", "error"),
}


def fields(element: ET.Element) -> set[str]:
    return {child.tag for child in element}


def xml_items(body: bytes, document: str) -> list[dict[str, Any]]:
    """The items of an XML list document, each as {field: text} (nested lists as
    elements), after checking the declaration and the root the specification names."""
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>'), body[:60]
    root_tag, item_tag = XML_ROOTS[document]
    root = ET.fromstring(body)  # our own output, in a test
    assert root.tag == root_tag, root.tag
    assert all(child.tag == item_tag for child in root)
    return [{child.tag: (child.text or "") if len(child) == 0 else child for child in item} for item in root]

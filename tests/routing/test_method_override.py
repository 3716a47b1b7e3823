"""Method override headers and the _method query parameter are refused in every spelling."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest
from gateway.routing import check_method_override

PLAIN_HEADERS = [(b"host", b"crm"), (b"accept", b"application/json"), (b"x-method", b"DELETE")]


@pytest.mark.parametrize(
    "name",
    [
        b"x-http-method-override",
        b"X-HTTP-Method-Override",
        b"x-method-override",
        b"X-Method-Override",
        b"x-http-method",
        b"X-HTTP-METHOD",
        b"x_http_method_override",
        b"X_Method_Override",
    ],
)
@pytest.mark.parametrize("value", [b"DELETE", b"GET", b""])
def test_override_headers_are_refused(name: bytes, value: bytes) -> None:
    with pytest.raises(BadRequest) as refused:
        check_method_override([*PLAIN_HEADERS, (name, value)], b"")
    assert refused.value.reason_id == "method_override_refused"
    assert "real HTTP method" in refused.value.detail


@pytest.mark.parametrize(
    "query",
    [
        b"_method=DELETE",
        b"a=1&_method=PUT",
        b"a=1;_method=PUT",
        b"_method",
        b"_method=",
        b"_METHOD=delete",
        b"%5Fmethod=DELETE",
        b"%5fmethod=DELETE",
        b"_%6Dethod=DELETE",
        b"%5F%6D%65%74%68%6F%64=DELETE",
        b"%255Fmethod=DELETE",
        b"%25255Fmethod=DELETE",
        b"_method%3D=DELETE",
        b"_method[]=DELETE",
        b"_method[x]=DELETE",
        b".method=DELETE",
        b"+_method=DELETE",
        b"%2Emethod=DELETE",
        b"a=1%26_method%3DDELETE",
        b"a=1%2526_method%253DDELETE",
        b"%EF%BC%BFmethod=DELETE",
    ],
)
def test_the_method_query_parameter_is_refused_in_any_spelling(query: bytes) -> None:
    with pytest.raises(BadRequest) as refused:
        check_method_override(PLAIN_HEADERS, query)
    assert refused.value.reason_id == "method_override_refused"


@pytest.mark.parametrize(
    "query",
    [
        b"",
        b"method=DELETE",
        b"x_method=1",
        b"q=_method",
        b"_methods=1",
        b"a=%5Fmethod",
        b"%ff%fe=1",
    ],
)
def test_ordinary_requests_pass(query: bytes) -> None:
    check_method_override(PLAIN_HEADERS, query)

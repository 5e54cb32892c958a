"""Attack 2: a viewer POSTs a huge body to /api/control; before the fix FastAPI read and
parsed all of it on the event loop before the role check, and the 422 echoed it back."""

from __future__ import annotations

from tests.api.conftest import Running

BIG = 4 * 1024 * 1024


def _huge_json() -> bytes:
    return b'{"blend": "' + b"x" * BIG + b'"}'


def test_a_viewer_is_refused_before_its_body_is_read(server: Running) -> None:
    with server.client("viewer") as viewer:
        r = viewer.post(
            "/api/control", content=_huge_json(), headers={"content-type": "application/json"}
        )
    assert r.status_code == 403, r.status_code
    assert len(r.content) < 1000  # nothing of the body comes back


def test_an_operator_body_over_the_limit_is_refused_unparsed(server: Running) -> None:
    with server.client("operator") as operator:
        r = operator.post(
            "/api/control", content=_huge_json(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413, r.status_code
        assert len(r.content) < 1000

        # the same without a Content-Length (chunked): cut off at the limit as well
        def chunks() -> object:
            yield b'{"blend": "'
            for _ in range(64):
                yield b"x" * 65536
            yield b'"}'

        r = operator.post(
            "/api/control", content=chunks(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413, r.status_code
        assert operator.get("/api/status").status_code == 200  # still serving


def test_a_refused_control_does_not_echo_its_input(server: Running) -> None:
    with server.client("operator") as operator:
        r = operator.post("/api/control", json={"blend": "secret-looking-" + "y" * 5000})
    assert r.status_code == 422
    assert "secret-looking" not in r.text and len(r.content) < 2000

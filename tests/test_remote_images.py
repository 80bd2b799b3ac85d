"""GATEWAY_REMOTE_IMAGES through the API: a reader's browser fetches every image in
`bodyHtml` from wherever its URL points, so by default none is left in it."""

import re

import pytest

from resolvers.ids import encode_id
from tests.factories import make_content, make_user
from tests.gateway_client import gateway

# A Markdown image and a raw-HTML one, each a tracking pixel; the raw one also carries
# an event handler, which no setting lets through.
BODY = (
    "Read on.\n\n"
    "![x](https://tracker.example/p.png)\n\n"
    'Inline <img src="https://tracker.example/q.png" alt="q" onerror="alert(1)"> too.'
)
QUERY = "query($id: ID!) { content(id: $id) { body bodyHtml } }"


async def _body_html(db, tmp_path, **settings) -> tuple[str, str]:
    author = await make_user(db)
    content = await make_content(db, author, body=BODY)
    assert content.id is not None
    variables = {"id": encode_id("Content", content.id)}
    async with gateway(db, tmp_path, **settings) as client:
        response = await client.post("/graphql", json={"query": QUERY, "variables": variables})
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["content"]["body"], body["data"]["content"]["bodyHtml"]


@pytest.mark.parametrize("settings", [{}, {"remote_images": "drop"}], ids=["default", "drop"])
async def test_body_html_has_no_remote_image_unless_told(db, tmp_path, settings) -> None:
    body, html = await _body_html(db, tmp_path, **settings)
    assert "<img" not in html and "tracker.example" not in html, html
    assert "<p>x</p>" in html, "a Markdown image leaves its alt text"
    assert "Read on." in html and "too." in html
    assert body == BODY, "the Markdown keeps its images"


async def test_keep_leaves_images_in_sanitized(db, tmp_path) -> None:
    _, html = await _body_html(db, tmp_path, remote_images="keep")
    sources = re.findall(r'<img[^>]* src="([^"]+)"', html)
    assert sources == ["https://tracker.example/p.png", "https://tracker.example/q.png"], html
    assert "onerror" not in html

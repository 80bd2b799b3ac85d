"""Markdown to HTML that is safe to put in a page: rendered, then allow-list sanitized."""

from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache
from html import escape
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token


class RemoteImages(StrEnum):
    """What bodyHtml does with images, which a reader's browser would fetch from wherever
    their URL points (a tracking pixel tells its owner who read what, and when)."""

    KEEP = "keep"
    DROP = "drop"


def _image_as_text(
    renderer: Any, tokens: Sequence[Token], index: int, options: Any, env: Any
) -> str:
    """A Markdown image becomes its alt text: the words stay, nothing is fetched."""
    alt = renderer.renderInlineAsText(tokens[index].children or [], options, env)
    return escape(alt, quote=False)


_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table")
_markdown_without_images = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable(
    "table"
)
_markdown_without_images.add_render_rule("image", _image_as_text)

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "th": {"align"},
    "td": {"align"},
}


# A bounded memo of a pure function: the same body renders the same HTML.
@lru_cache(maxsize=4096)
def render_markdown(source: str, *, images: RemoteImages = RemoteImages.DROP) -> str:
    """The body as HTML with no script, style, iframe, event handler, or javascript:/data:
    URL; links get rel="nofollow noopener". Raw HTML in the Markdown goes through the
    same allow-list, so an author cannot smuggle anything past it. With
    `RemoteImages.DROP` no <img> survives (Markdown images leave their alt text)."""
    keep = images is RemoteImages.KEEP
    markdown = _markdown if keep else _markdown_without_images
    return nh3.clean(
        markdown.render(source),
        tags=_TAGS | {"img"} if keep else _TAGS,
        clean_content_tags={"script", "style"},
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
    )

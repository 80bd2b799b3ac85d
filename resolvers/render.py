"""Markdown to HTML that is safe to put in a page: rendered, then allow-list sanitized."""

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table")

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "th": {"align"},
    "td": {"align"},
}


@lru_cache(maxsize=4096)
def render_markdown(source: str) -> str:
    """The body as HTML with no script, style, iframe, event handler, or javascript:/data:
    URL; links get rel="nofollow noopener". Raw HTML in the Markdown goes through the
    same allow-list, so an author cannot smuggle anything past it."""
    return nh3.clean(
        _markdown.render(source),
        tags=_TAGS,
        clean_content_tags={"script", "style"},
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
    )

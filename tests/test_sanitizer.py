"""bodyHtml is safe to put in a page, whatever an author writes."""

import re
from html.parser import HTMLParser

import pytest

from resolvers.render import render_markdown

PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<img src=x oNeRrOr=alert(1)>",
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    "<svg><script>alert(1)</script></svg>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](java&#x09;script:alert(1))",
    "[click](%6A%61%76%61%73%63%72%69%70%74:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '<iframe src="https://evil.example"></iframe>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<body onload="alert(1)">',
    '<input autofocus onfocus="alert(1)">',
    '<details open ontoggle="alert(1)">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><button>x</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    "<!--<img src=x onerror=alert(1)>-->",
    '<a href="vbscript:msgbox(1)">x</a>',
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
]

SAFE_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
SAFE_SCHEMES = {"http", "https", "mailto"}


def scheme_of(url: str) -> str | None:
    """The scheme a browser would read (WHATWG URL parsing: tabs and newlines anywhere are
    dropped, leading and trailing controls and spaces trimmed); None for relative URLs."""
    cleaned = re.sub(r"[\t\n\r]", "", url).strip(
        "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f "
    )
    match = SCHEME.match(cleaned)
    return match.group(1).lower() if match else None


class Inspector(HTMLParser):
    """What a browser would build from the HTML: every element and attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in SAFE_TAGS:
            self.problems.append(f"element <{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name in {"style", "srcdoc", "formaction"}:
                self.problems.append(f"attribute {name} on <{tag}>")
            if name in {"href", "src", "action", "xlink:href"}:
                scheme = scheme_of(value or "")
                if scheme is not None and scheme not in SAFE_SCHEMES:
                    self.problems.append(f"URL {value!r} in <{tag} {name}>")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_known_xss_payloads_do_not_survive(payload: str) -> None:
    html = render_markdown(f"Intro paragraph.\n\n{payload}\n\nOutro.")
    inspector = Inspector()
    inspector.feed(html)
    assert inspector.problems == [], html
    assert "Intro paragraph." in html


def test_markdown_still_renders_and_links_get_rel() -> None:
    html = render_markdown(
        "# Title\n\nSome **bold** and [a link](https://example.com).\n\n```py\nx = 1\n```"
    )
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html
    assert '<a href="https://example.com" rel="nofollow noopener noreferrer">a link</a>' in html
    assert "<pre><code" in html and "x = 1" in html

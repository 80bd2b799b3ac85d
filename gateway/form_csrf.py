"""CSRF protection for the account pages' forms, which browsers post as
application/x-www-form-urlencoded (what gateway/csrf.py refuses on /graphql).

Two checks, both needed: the browser says the post comes from this site
(Sec-Fetch-Site, else Origin), and the form carries a token that only a page of ours
could have put there: an HMAC of a random cookie the page set (SameSite=Strict,
HttpOnly), the signed double-submit cookie pattern. A page elsewhere can neither read
the cookie nor forge the token."""

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "gateway_form"
FIELD = "csrf"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class FormCsrf:
    def __init__(self, key: bytes, *, public_url: str) -> None:
        self._key = key
        self._public_origin = _origin(public_url)
        self._secure = public_url.startswith("https://")

    def _mac(self, cookie: str, path: str) -> str:
        return hmac.new(self._key, f"{path}:{cookie}".encode(), hashlib.sha256).hexdigest()

    def token(self, request: Request) -> tuple[str, str | None]:
        """The form token for this page, and a cookie value to set when there was none."""
        cookie = request.cookies.get(COOKIE)
        fresh = None
        if not cookie or len(cookie) > 100:
            cookie = fresh = secrets.token_urlsafe(32)
        return self._mac(cookie, request.url.path), fresh

    def set_cookie(self, response: Response, value: str | None) -> None:
        if value is not None:
            response.set_cookie(
                COOKIE,
                value,
                path="/account",
                httponly=True,
                samesite="strict",
                secure=self._secure,
            )

    def refusal(self, request: Request, form: Mapping[str, object]) -> str | None:
        """Why this form post is refused, or None."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return "the form was sent from another site"
        origin = request.headers.get("origin")
        # Browsers too old for Sec-Fetch-Site still send Origin with a form post.
        if (
            site is None
            and origin is not None
            and origin.lower()
            not in (
                _origin(str(request.url)),
                self._public_origin,
            )
        ):
            return "the form was sent from another site"
        cookie = request.cookies.get(COOKIE)
        sent = form.get(FIELD)
        if not cookie or not isinstance(sent, str):
            return "the form has expired"
        if not hmac.compare_digest(sent, self._mac(cookie, request.url.path)):
            return "the form has expired"
        return None

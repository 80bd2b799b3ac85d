"""The pages email links open, so sign-up and reset work before any frontend exists:
/account/verify-email (confirm the address), /account/reset-password (a form that sets
a new password), /account/unsubscribe (confirm; mail clients' one-click POST too).

Opening a link changes nothing (mail scanners follow links); the page's form does.
A frontend takes these paths over by becoming GATEWAY_PUBLIC_URL."""

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from db.session import Database
from gateway.form_csrf import FormCsrf
from gateway.jinja import templates
from resolvers import email_accounts, email_settings, validation
from resolvers.auth import PasswordService
from resolvers.errors import BadUserInput
from resolvers.outreach import (
    RESET_PASSWORD_PATH,
    UNSUBSCRIBE_PATH,
    VERIFY_EMAIL_PATH,
    Outreach,
    TooManyAttempts,
    throttle,
)

_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    # The token is in the URL: it must not leave in a Referer header. (no-referrer
    # would also make browsers send `Origin: null` with the page's own form.)
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
MAX_FORM_BYTES = 8192


def _page(template: str, status: int = 200, **values: Any) -> HTMLResponse:
    html = templates.get_template(f"pages/{template}.html").render(values)
    return HTMLResponse(html, status, headers=_HEADERS)


def _message(title: str, message: str, *, status: int, detail: str = "") -> HTMLResponse:
    tone = "done" if status < 400 else "error"
    return _page("message", status, title=title, message=message, detail=detail, tone=tone)


def _invalid_link(title: str, what_next: str) -> HTMLResponse:
    return _message(
        title,
        "This link is not valid: it has expired, has been used already, or was copied "
        "incompletely.",
        status=400,
        detail=what_next,
    )


class AccountPages:
    def __init__(
        self, db: Database, passwords: PasswordService, outreach: Outreach, key: bytes
    ) -> None:
        self.db = db
        self.passwords = passwords
        self.outreach = outreach
        self.csrf = FormCsrf(key, public_url=outreach.public_url)

    def routes(self) -> list[Route]:
        methods = ["GET", "POST"]
        return [
            Route(VERIFY_EMAIL_PATH, self.verify_email, methods=methods),
            Route(RESET_PASSWORD_PATH, self.reset_password, methods=methods),
            Route(UNSUBSCRIBE_PATH, self.unsubscribe, methods=methods),
        ]

    def _form_page(self, request: Request, template: str, **values: Any) -> HTMLResponse:
        csrf, cookie = self.csrf.token(request)
        response = _page(template, values.pop("status", 200), csrf=csrf, **values)
        self.csrf.set_cookie(response, cookie)
        return response

    async def _posted(self, request: Request, title: str) -> tuple[dict[str, str], Response | None]:
        """The form's fields, or the page that refuses it."""
        if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
            return {}, _message(title, "The form is too large.", status=413)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        try:
            throttle(self.outreach.for_client(_client(request)), "account page", address=None)
        except TooManyAttempts as error:
            return form, _message(title, error.message, status=429)
        return form, None

    def _refused(self, request: Request, form: dict[str, str], title: str) -> Response | None:
        reason = self.csrf.refusal(request, form)
        if reason is None:
            return None
        return _message(
            title, f"Nothing was changed: {reason}.", status=403,
            detail="Open the link from your email again and use the form on that page.",
        )  # fmt: skip

    async def verify_email(self, request: Request) -> Response:
        title = "Confirm your email address"
        again = "Sign in and ask for a new verification email."
        if request.method == "GET":
            token = request.query_params.get("token", "")
            user = await email_accounts.peek_token(self.db, token, email_accounts.VERIFY_EMAIL)
            if user is None:
                return _invalid_link(title, again)
            return self._form_page(
                request, "verify_email", title=title, token=token, handle=user.handle
            )
        form, refused = await self._posted(request, title)
        refused = refused or self._refused(request, form, title)
        if refused is not None:
            return refused
        user = await email_accounts.verify_with_token(self.db, form.get("token", ""))
        if user is None:
            return _invalid_link(title, again)
        return _message("Address confirmed", f"Thank you: {user.email} is confirmed.", status=200)

    async def reset_password(self, request: Request) -> Response:
        title = "Choose a new password"
        again = "Ask for a new password reset email."
        purpose = email_accounts.RESET_PASSWORD
        if request.method == "GET":
            token = request.query_params.get("token", "")
            user = await email_accounts.peek_token(self.db, token, purpose)
            if user is None:
                return _invalid_link(title, again)
            return self._reset_form(request, token, user.handle)
        form, refused = await self._posted(request, title)
        refused = refused or self._refused(request, form, title)
        if refused is not None:
            return refused
        token = form.get("token", "")
        user = await email_accounts.peek_token(self.db, token, purpose)
        if user is None:
            return _invalid_link(title, again)
        new_password = form.get("new_password", "")
        if new_password != form.get("confirm_password", ""):
            return self._reset_form(request, token, user.handle, "The two passwords differ.")
        try:
            await email_accounts.reset_with_token(self.db, self.passwords, token, new_password)
        except BadUserInput as error:
            if error.extensions and error.extensions.get("field") == "token":
                return _invalid_link(title, again)
            message = error.message.replace("`newPassword`", "The new password")
            return self._reset_form(request, token, user.handle, message)
        return _message(
            "Password changed",
            "Your new password is set. Sign in with it; every device signed in before has "
            "been signed out.",
            status=200,
        )

    def _reset_form(
        self, request: Request, token: str, handle: str, error: str | None = None
    ) -> HTMLResponse:
        return self._form_page(
            request,
            "reset_password",
            status=400 if error else 200,
            title="Choose a new password",
            token=token,
            handle=handle,
            error=error,
            min_length=validation.MIN_PASSWORD,
        )

    async def unsubscribe(self, request: Request) -> Response:
        title = "Unsubscribe"
        again = "Change your email settings in your preferences instead."
        if request.method == "GET":
            token = request.query_params.get("token", "")
            found = await email_settings.peek_unsubscribe(self.db, token)
            if found is None:
                return _invalid_link(title, again)
            setting, user = found
            what = email_settings.TOPICS[setting]
            return self._form_page(
                request, "unsubscribe", title=title, token=token, handle=user.handle, what=what
            )
        form, refused = await self._posted(request, title)
        if refused is not None:
            return refused
        # RFC 8058: a mail client posts List-Unsubscribe=One-Click to the link itself,
        # without cookies or a page; the token in the link is the authority.
        one_click = form.get("List-Unsubscribe") == "One-Click"
        if not one_click:
            refused = self._refused(request, form, title)
            if refused is not None:
                return refused
        token = request.query_params.get("token") or form.get("token", "")
        found = await email_settings.unsubscribe_with_token(self.db, token)
        if one_click:
            if found is None:
                return PlainTextResponse("unknown or expired unsubscribe link", 400)
            return PlainTextResponse("unsubscribed", 200)
        if found is None:
            return _invalid_link(title, again)
        what = email_settings.TOPICS[found[0]]
        return _message(
            "Unsubscribed",
            f"You will get no more emails about {what}.",
            status=200,
            detail="You can turn them on again any time in your preferences.",
        )


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None

"""Account mutations reached by email: verification, password reset and change."""

import strawberry

from resolvers import email_accounts
from resolvers.context import Context
from resolvers.viewer import Viewer
from schema.inputs import AuthPayload
from schema.users import User


def _signed_in(
    info: strawberry.Info[Context], user_id: int | None, role: str, version: int
) -> AuthPayload:
    assert user_id is not None
    issued = info.context.tokens.issue(user_id, version)
    return AuthPayload(
        token=issued.token,
        expires_at=issued.expires_at,
        # The response is theirs: it shows them what they see of themselves signed in.
        signed_in=Viewer(id=user_id, role=role),
    )


@strawberry.type
class AccountMutations:
    @strawberry.mutation(
        description="Confirms the address with the token from the verification email."
    )
    async def verify_email(self, info: strawberry.Info[Context], token: str) -> User:
        user = await email_accounts.verify_email(info.context, token)
        assert user.id is not None
        return await info.context.reads.entity(info, "User", user.id)  # type: ignore[no-any-return]

    @strawberry.mutation(
        description="Sends the viewer a new verification email; false when the address is "
        "verified already."
    )
    async def resend_verification_email(self, info: strawberry.Info[Context]) -> bool:
        return await email_accounts.resend_verification_email(info.context)

    @strawberry.mutation(
        description="Always true, whether or not the address is known; only a known one "
        "gets a link (valid for an hour, once)."
    )
    async def request_password_reset(self, info: strawberry.Info[Context], email: str) -> bool:
        return await email_accounts.request_password_reset(info.context, email)

    @strawberry.mutation(
        description="Sets a new password with the token from the reset email, and revokes "
        "every older token."
    )
    async def reset_password(
        self, info: strawberry.Info[Context], token: str, new_password: str
    ) -> AuthPayload:
        user, version = await email_accounts.reset_password(info.context, token, new_password)
        return _signed_in(info, user.id, user.role, version)

    @strawberry.mutation(description="Revokes every older token and returns a new one.")
    async def change_password(
        self, info: strawberry.Info[Context], current_password: str, new_password: str
    ) -> AuthPayload:
        user, version = await email_accounts.change_password(
            info.context, current_password, new_password
        )
        return _signed_in(info, user.id, user.role, version)

"""The root Mutation type: each field is one transaction, and what it returns is read
back in one statement compiled from the field's selection (execution/executor.py)."""

from typing import Any

import strawberry

from resolvers import accounts, content_writes, notifications, preferences, social
from resolvers.content_writes import ContentInput
from resolvers.context import Context
from resolvers.preferences import PreferencesInput as PreferencesChange
from resolvers.viewer import Viewer
from schema.account_mutations import AccountMutations
from schema.arguments import given
from schema.content import Content
from schema.inputs import (
    AuthPayload,
    CreateContentInput,
    LoginInput,
    PreferencesInput,
    RegisterInput,
    UpdateContentInput,
)
from schema.preferences import Preferences
from schema.users import User
from schema.webhooks import WebhookMutations


def _signed_in(result: accounts.SignedIn) -> AuthPayload:
    assert result.user.id is not None
    return AuthPayload(
        token=result.token,
        expires_at=result.expires_at,
        # The response is theirs: it shows them what they see of themselves signed in.
        signed_in=Viewer(id=result.user.id, role=result.user.role),
    )


async def _content(info: strawberry.Info[Context], pk: int) -> Any:
    return await info.context.reads.entity(info, "Content", pk)


@strawberry.type
class Mutation(AccountMutations, WebhookMutations):
    @strawberry.mutation(description="Creates an account and signs it in.")
    async def register(self, info: strawberry.Info[Context], input: RegisterInput) -> AuthPayload:
        result = await accounts.register(
            info.context,
            handle=input.handle,
            email=input.email,
            password=input.password,
            display_name=input.display_name,
        )
        return _signed_in(result)

    @strawberry.mutation(description="Signs in with a handle or email and a password.")
    async def login(self, info: strawberry.Info[Context], input: LoginInput) -> AuthPayload:
        result = await accounts.login(info.context, login=input.login, password=input.password)
        return _signed_in(result)

    @strawberry.mutation(description="Revokes every token issued to the viewer so far.")
    async def logout(self, info: strawberry.Info[Context]) -> bool:
        return await accounts.logout(info.context)

    @strawberry.mutation(description="Creates a DRAFT authored by the viewer.")
    async def create_content(
        self, info: strawberry.Info[Context], input: CreateContentInput
    ) -> Content:
        data = ContentInput(
            title=input.title,
            summary=given(input.summary),
            body=input.body,
            tags=given(input.tags) or [],
            visibility=input.visibility.value if input.visibility else "PUBLIC",
            language=given(input.language) or "en",
        )
        return await _content(info, await content_writes.create_content(info.context, data))  # type: ignore[no-any-return]

    @strawberry.mutation(description="Changes the viewer's own content; fields left out stay.")
    async def update_content(
        self, info: strawberry.Info[Context], id: strawberry.ID, input: UpdateContentInput
    ) -> Content:
        summary = input.summary
        data = ContentInput(
            title=given(input.title),
            # An explicit null clears the summary; left out keeps it.
            summary="" if summary is None else given(summary),
            body=given(input.body),
            tags=given(input.tags),
            visibility=input.visibility.value if input.visibility else None,
            language=given(input.language),
        )
        return await _content(info, await content_writes.update_content(info.context, id, data))  # type: ignore[no-any-return]

    @strawberry.mutation(description="Publishes the viewer's own content; followers are notified.")
    async def publish_content(self, info: strawberry.Info[Context], id: strawberry.ID) -> Content:
        return await _content(info, await content_writes.publish_content(info.context, id))  # type: ignore[no-any-return]

    @strawberry.mutation(description="Takes content off lists: its author, or an ADMIN.")
    async def archive_content(self, info: strawberry.Info[Context], id: strawberry.ID) -> Content:
        return await _content(info, await content_writes.archive_content(info.context, id))  # type: ignore[no-any-return]

    @strawberry.mutation(description="Returns the id of what was deleted.")
    async def delete_content(
        self, info: strawberry.Info[Context], id: strawberry.ID
    ) -> strawberry.ID:
        return strawberry.ID(await content_writes.delete_content(info.context, id))

    @strawberry.mutation(description="Saves the viewer's preferences.")
    async def update_preferences(
        self, info: strawberry.Info[Context], input: PreferencesInput
    ) -> Preferences:
        followed = given(input.followed_tags)
        change = PreferencesChange(
            followed_tags=[(t.tag, t.weight) for t in followed] if followed is not None else None,
            muted_tags=given(input.muted_tags),
            muted_authors=given(input.muted_authors),
            languages=given(input.languages),
            email=email.change() if (email := given(input.email)) else None,
        )
        viewer_id = await preferences.update_preferences(info.context, change)
        return await info.context.reads.entity(info, "Preferences", viewer_id)  # type: ignore[no-any-return]

    @strawberry.mutation
    async def follow(self, info: strawberry.Info[Context], handle: str) -> User:
        user = await social.follow(info.context, handle)
        assert user.id is not None
        return await info.context.reads.entity(info, "User", user.id)  # type: ignore[no-any-return]

    @strawberry.mutation
    async def unfollow(self, info: strawberry.Info[Context], handle: str) -> User:
        user = await social.unfollow(info.context, handle)
        assert user.id is not None
        return await info.context.reads.entity(info, "User", user.id)  # type: ignore[no-any-return]

    @strawberry.mutation(description="Adds the viewer's reaction; reacting twice changes nothing.")
    async def react(self, info: strawberry.Info[Context], content_id: strawberry.ID) -> Content:
        return await _content(info, await social.react(info.context, content_id))  # type: ignore[no-any-return]

    @strawberry.mutation
    async def unreact(self, info: strawberry.Info[Context], content_id: strawberry.ID) -> Content:
        return await _content(info, await social.unreact(info.context, content_id))  # type: ignore[no-any-return]

    @strawberry.mutation(
        description="Marks the viewer's notifications read (all of them without `ids`); "
        "returns how many changed."
    )
    async def mark_notifications_read(
        self, info: strawberry.Info[Context], ids: list[strawberry.ID] | None = strawberry.UNSET
    ) -> int:
        chosen = given(ids)
        return await notifications.mark_read(
            info.context, None if chosen is None else [str(i) for i in chosen]
        )

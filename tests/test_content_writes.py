"""Writing content: drafts, edits, publishing (with follower notifications), archiving,
deleting, and the validation of every field."""

import pytest

from resolvers.ids import encode_id
from resolvers.viewer import Viewer
from tests.factories import follow, make_user

CREATE = """
mutation($input: CreateContentInput!) {
  createContent(input: $input) {
    id title summary body bodyHtml status visibility language publishedAt
    author { handle } tags { name }
  }
}
"""


@pytest.fixture
async def writer(db):
    user = await make_user(db, handle="writer")
    return user, Viewer.member(user.id)


async def test_create_makes_a_draft_with_normalized_tags(gql, writer) -> None:
    _, viewer = writer
    data = await gql.data(
        CREATE,
        {
            "input": {
                "title": "  Hello  ",
                "body": "# Hi\n\n<script>alert(1)</script>",
                "tags": ["Python", "#web dev", "python"],
                "visibility": "MEMBERS",
                "language": "DE",
            }
        },
        viewer=viewer,
    )
    content = data["createContent"]
    assert content["title"] == "Hello"
    assert content["status"] == "DRAFT" and content["publishedAt"] is None
    assert content["visibility"] == "MEMBERS" and content["language"] == "de"
    assert content["author"] == {"handle": "writer"}
    assert [t["name"] for t in content["tags"]] == ["python", "web-dev"]
    assert "<script" not in content["bodyHtml"] and "<h1>Hi</h1>" in content["bodyHtml"]
    anonymous = await gql.data("query($id: ID!) { content(id: $id) { id } }", {"id": content["id"]})
    assert anonymous == {"content": None}, "a draft is its author's alone"


async def test_contract_defaults_apply(gql, writer) -> None:
    _, viewer = writer
    data = await gql.data(CREATE, {"input": {"title": "t", "body": "b"}}, viewer=viewer)
    content = data["createContent"]
    assert (content["visibility"], content["language"], content["tags"]) == ("PUBLIC", "en", [])
    assert content["summary"] is None


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"title": " "}, "title", "must not be empty"),
        ({"title": "x" * 201}, "title", "at most 200"),
        ({"body": ""}, "body", "must not be empty"),
        ({"body": "x" * 100_001}, "body", "at most 100,000"),
        ({"summary": "x" * 501}, "summary", "at most 500"),
        ({"tags": [f"t{i}" for i in range(11)]}, "tags", "at most 10"),
        ({"tags": ["ok", "no/slash"]}, "tags", "not a tag name"),
        ({"tags": ["-leading"]}, "tags", "not a tag name"),
        ({"language": "english"}, "language", "ISO 639-1"),
        ({"language": "xx"}, "language", "ISO 639-1"),
    ],
)
async def test_create_rejects_bad_input(gql, writer, overrides, field, words) -> None:
    _, viewer = writer
    result = await gql.execute(
        CREATE, {"input": {"title": "t", "body": "b"} | overrides}, viewer=viewer
    )
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert f"`{field}`" in error.message and words in error.message, error.message
    mine = await gql.data('{ user(handle: "writer") { contents { totalCount } } }', viewer=viewer)
    assert mine["user"]["contents"]["totalCount"] == 0, "nothing written"


async def test_update_changes_only_what_is_given(gql, writer) -> None:
    _, viewer = writer
    created = (
        await gql.data(
            CREATE,
            {"input": {"title": "t", "body": "b", "summary": "s", "tags": ["a", "b"]}},
            viewer=viewer,
        )
    )["createContent"]
    update = """mutation($id: ID!, $input: UpdateContentInput!) {
      updateContent(id: $id, input: $input) { title summary body tags { name } updatedAt }
    }"""
    changed = await gql.data(
        update, {"id": created["id"], "input": {"title": "new"}}, viewer=viewer
    )
    assert changed["updateContent"]["title"] == "new"
    assert changed["updateContent"]["summary"] == "s" and changed["updateContent"]["body"] == "b"
    assert [t["name"] for t in changed["updateContent"]["tags"]] == ["a", "b"]
    cleared = await gql.data(
        update, {"id": created["id"], "input": {"summary": None, "tags": ["c"]}}, viewer=viewer
    )
    assert cleared["updateContent"]["summary"] is None
    assert cleared["updateContent"]["tags"] == [{"name": "c"}]


async def test_publish_notifies_followers_once_and_archive_hides(gql, db, writer) -> None:
    author, viewer = writer
    fans = [await make_user(db) for _ in range(3)]
    for fan in fans:
        await follow(db, fan, author)
    created = (await gql.data(CREATE, {"input": {"title": "t", "body": "b"}}, viewer=viewer))[
        "createContent"
    ]
    publish = "mutation($id: ID!) { publishContent(id: $id) { status publishedAt } }"
    first = (await gql.data(publish, {"id": created["id"]}, viewer=viewer))["publishContent"]
    assert first["status"] == "PUBLISHED" and first["publishedAt"]
    again = (await gql.data(publish, {"id": created["id"]}, viewer=viewer))["publishContent"]
    assert again == first, "publishing twice changes nothing"

    inbox = "{ notifications { totalCount edges { node { kind actor { handle } content { title } read } } } }"
    for fan in fans:
        data = await gql.data(inbox, viewer=Viewer.member(fan.id))
        assert data["notifications"]["totalCount"] == 1
        assert data["notifications"]["edges"][0]["node"] == {
            "kind": "NEW_CONTENT_FROM_FOLLOWED",
            "actor": {"handle": "writer"},
            "content": {"title": "t"},
            "read": False,
        }
    listed = await gql.data("{ contents { totalCount } }")
    assert listed["contents"]["totalCount"] == 1

    archived = await gql.data(
        "mutation($id: ID!) { archiveContent(id: $id) { status publishedAt } }",
        {"id": created["id"]},
        viewer=viewer,
    )
    assert archived["archiveContent"]["status"] == "ARCHIVED"
    assert (await gql.data("{ contents { totalCount } }"))["contents"]["totalCount"] == 0
    fan_view = await gql.data(inbox, viewer=Viewer.member(fans[0].id))
    assert fan_view["notifications"]["edges"][0]["node"]["content"] is None, (
        "a notification never shows content its reader may no longer see"
    )


async def test_delete_returns_the_id_and_the_content_is_gone(gql, writer) -> None:
    _, viewer = writer
    created = (await gql.data(CREATE, {"input": {"title": "t", "body": "b"}}, viewer=viewer))[
        "createContent"
    ]
    deleted = await gql.data(
        "mutation($id: ID!) { deleteContent(id: $id) }", {"id": created["id"]}, viewer=viewer
    )
    assert deleted == {"deleteContent": created["id"]}
    again = await gql.execute(
        "mutation($id: ID!) { deleteContent(id: $id) }", {"id": created["id"]}, viewer=viewer
    )
    assert again.errors[0].extensions["code"] == "NOT_FOUND"


async def test_an_id_of_another_type_is_not_found(gql, writer) -> None:
    author, viewer = writer
    result = await gql.execute(
        "mutation($id: ID!) { publishContent(id: $id) { id } }",
        {"id": encode_id("User", author.id)},
        viewer=viewer,
    )
    assert result.errors[0].extensions["code"] == "NOT_FOUND"


async def test_followers_hear_nothing_of_private_content(gql, db, writer) -> None:
    author, viewer = writer
    fan = await make_user(db)
    await follow(db, fan, author)
    created = (
        await gql.data(
            CREATE, {"input": {"title": "t", "body": "b", "visibility": "PRIVATE"}}, viewer=viewer
        )
    )["createContent"]
    await gql.data(
        "mutation($id: ID!) { publishContent(id: $id) { id } }",
        {"id": created["id"]},
        viewer=viewer,
    )
    inbox = await gql.data("{ notifications { totalCount } }", viewer=Viewer.member(fan.id))
    assert inbox["notifications"]["totalCount"] == 0

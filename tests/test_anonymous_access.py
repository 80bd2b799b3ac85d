"""An anonymous viewer sees PUBLISHED + PUBLIC content only, through every path."""

import pytest

from resolvers.ids import encode_id
from tests.factories import make_content, make_user

HIDDEN = [
    ("DRAFT", "PUBLIC"),
    ("ARCHIVED", "PUBLIC"),
    ("PUBLISHED", "MEMBERS"),
    ("PUBLISHED", "PRIVATE"),
    ("DRAFT", "PRIVATE"),
    ("ARCHIVED", "MEMBERS"),
]


@pytest.fixture
async def world(db):
    author = await make_user(db, handle="writer")
    visible = await make_content(db, author, title="visible", tags=("shared",))
    hidden = [
        await make_content(db, author, title=f"{s}-{v}", status=s, visibility=v, tags=("shared",))
        for s, v in HIDDEN
    ]
    return author, visible, hidden


async def test_content_and_node_are_null_for_hidden_content(gql, world) -> None:
    _, visible, hidden = world
    for row in [visible, *hidden]:
        gid = encode_id("Content", row.id)
        data = await gql.data(
            "query($id: ID!) { content(id: $id) { title } node(id: $id) { id } }", {"id": gid}
        )
        if row is visible:
            assert data == {"content": {"title": "visible"}, "node": {"id": gid}}
        else:
            assert data == {"content": None, "node": None}, row.title


async def test_lists_and_counts_show_only_public_published(gql, world) -> None:
    data = await gql.data(
        """{
          contents(first: 100) { totalCount edges { node { title } } }
          drafts: contents(filter: {status: DRAFT}) { totalCount edges { node { title } } }
          archived: contents(filter: {status: ARCHIVED}) { totalCount }
          user(handle: "writer") { contents { totalCount edges { node { title } } } }
          tags { edges { node { name contentCount } } }
        }"""
    )
    assert data["contents"] == {"totalCount": 1, "edges": [{"node": {"title": "visible"}}]}
    assert data["drafts"] == {"totalCount": 0, "edges": []}
    assert data["archived"] == {"totalCount": 0}
    assert data["user"]["contents"] == {"totalCount": 1, "edges": [{"node": {"title": "visible"}}]}
    assert data["tags"]["edges"] == [{"node": {"name": "shared", "contentCount": 1}}]


async def test_popular_and_oldest_orders_apply_the_same_rules(gql, world) -> None:
    for order in ("OLDEST", "POPULAR"):
        data = await gql.data(
            "query($o: ContentOrder) { contents(orderBy: $o) { totalCount edges { node { title } } } }",
            {"o": order},
        )
        assert data["contents"] == {"totalCount": 1, "edges": [{"node": {"title": "visible"}}]}


async def test_a_hidden_id_and_a_missing_id_look_the_same(gql, world) -> None:
    _, _, hidden = world
    hidden_result = await gql.execute(
        "query($id: ID!) { content(id: $id) { id } }", {"id": encode_id("Content", hidden[0].id)}
    )
    missing_result = await gql.execute(
        "query($id: ID!) { content(id: $id) { id } }", {"id": encode_id("Content", 999_999_999)}
    )
    assert hidden_result.data == missing_result.data == {"content": None}
    assert hidden_result.errors is None and missing_result.errors is None


async def test_an_id_of_another_type_finds_nothing(gql, world) -> None:
    author, visible, _ = world
    data = await gql.data(
        "query($u: ID!, $c: ID!) { content(id: $u) { id } node(id: $c) { ... on User { handle } } }",
        {"u": encode_id("User", author.id), "c": encode_id("Content", visible.id)},
    )
    assert data == {"content": None, "node": {}}


async def test_a_malformed_id_is_bad_user_input(gql) -> None:
    result = await gql.execute('{ content(id: "not-an-id") { id } }')
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert "`id`" in error.message


async def test_private_fields_are_null_without_errors(gql, world) -> None:
    data = await gql.data(
        '{ viewer { id } user(handle: "writer") { email preferences { languages } viewerFollows } }'
    )
    assert data == {
        "viewer": None,
        "user": {"email": None, "preferences": None, "viewerFollows": False},
    }


async def test_tags_used_only_on_hidden_content_do_not_exist_for_others(db, gql) -> None:
    author = await make_user(db)
    draft = await make_content(db, author, status="DRAFT", tags=("layoff-plan",))
    await make_content(db, author, tags=("public-tag",))
    data = await gql.data("{ tags { totalCount edges { node { name } } } }")
    assert data["tags"] == {"totalCount": 1, "edges": [{"node": {"name": "public-tag"}}]}
    from sqlmodel import select

    from db.tables import ContentTag, Tag

    async with db.session() as session:
        (tag_id,) = (
            await session.exec(
                select(Tag.id).join(ContentTag).where(ContentTag.content_id == draft.id)
            )
        ).all()
    hidden = await gql.data(
        "query($id: ID!) { node(id: $id) { id } }", {"id": encode_id("Tag", tag_id)}
    )
    assert hidden == {"node": None}

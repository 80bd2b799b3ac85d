"""Every viewer sees exactly what DESIGN.md's access rules allow, through every path that
reaches content, and no count or error gives the rest away."""

import itertools

import pytest

from resolvers.ids import encode_id
from resolvers.viewer import Viewer
from tests.factories import make_content, make_user

STATUSES = ("DRAFT", "PUBLISHED", "ARCHIVED")
VISIBILITIES = ("PUBLIC", "MEMBERS", "PRIVATE")
CELLS = list(itertools.product(STATUSES, VISIBILITIES))


def may_see(viewer: str, status: str, visibility: str) -> bool:
    """DESIGN.md "Access rules", written out independently of resolvers/policy.py."""
    if viewer in ("author", "admin"):
        return True
    if status != "PUBLISHED":
        return False
    return visibility == "PUBLIC" or (visibility == "MEMBERS" and viewer == "member")


@pytest.fixture
async def world(db):
    author = await make_user(db, handle="author")
    member = await make_user(db, handle="member")
    admin = await make_user(db, handle="boss", role="ADMIN")
    contents = {
        (s, v): await make_content(
            db, author, title=f"{s}/{v}", status=s, visibility=v, tags=("t",)
        )
        for s, v in CELLS
    }
    viewers = {
        "anonymous": Viewer.anonymous(),
        "member": Viewer.member(member.id),
        "author": Viewer.member(author.id),
        "admin": Viewer.admin(admin.id),
    }
    return viewers, contents


VIEWERS = ("anonymous", "member", "author", "admin")


@pytest.mark.parametrize("who", VIEWERS)
async def test_lookups_by_id(gql, world, who) -> None:
    viewers, contents = world
    for (status, visibility), row in contents.items():
        gid = encode_id("Content", row.id)
        data = await gql.data(
            "query($id: ID!) { content(id: $id) { id } node(id: $id) { id } }",
            {"id": gid},
            viewer=viewers[who],
        )
        expected = {"id": gid} if may_see(who, status, visibility) else None
        assert data == {"content": expected, "node": expected}, (who, status, visibility)


@pytest.mark.parametrize("who", VIEWERS)
async def test_lists_counts_and_tag_counts(gql, world, who) -> None:
    viewers, _ = world
    visible = sorted(f"{s}/{v}" for s, v in CELLS if may_see(who, s, v))
    published = [t for t in visible if t.startswith("PUBLISHED/")]
    data = await gql.data(
        """{
          contents(first: 100) { totalCount edges { node { title } } }
          user(handle: "author") { contents(first: 100) { totalCount edges { node { title } } } }
          tags { edges { node { name contentCount } } }
        }""",
        viewer=viewers[who],
    )
    for connection in (data["contents"], data["user"]["contents"]):
        assert sorted(e["node"]["title"] for e in connection["edges"]) == visible, who
        assert connection["totalCount"] == len(visible), who
    assert data["tags"]["edges"] == [{"node": {"name": "t", "contentCount": len(published)}}]
    for status in STATUSES:
        filtered = await gql.data(
            "query($s: ContentStatus) { contents(filter: {status: $s}) { totalCount } }",
            {"s": status},
            viewer=viewers[who],
        )
        assert filtered["contents"]["totalCount"] == sum(
            1 for t in visible if t.startswith(status)
        ), (who, status)


UPDATE = 'mutation($id: ID!) { updateContent(id: $id, input: {title: "changed"}) { title } }'
ARCHIVE = "mutation($id: ID!) { archiveContent(id: $id) { status } }"
DELETE = "mutation($id: ID!) { deleteContent(id: $id) }"
PUBLISH = "mutation($id: ID!) { publishContent(id: $id) { status } }"


def write_outcome(who: str, action: str, status: str, visibility: str) -> str:
    if who == "anonymous":
        return "UNAUTHENTICATED"
    if not may_see(who, status, visibility):
        return "NOT_FOUND"
    if who == "author" or (who == "admin" and action in ("archive", "delete")):
        return "ok"
    return "FORBIDDEN"


@pytest.mark.parametrize("who", VIEWERS)
@pytest.mark.parametrize(
    ("action", "document"),
    [("update", UPDATE), ("publish", PUBLISH), ("archive", ARCHIVE), ("delete", DELETE)],
)
async def test_writes(gql, world, db, who, action, document) -> None:
    viewers, contents = world
    for (status, visibility), row in contents.items():
        gid = encode_id("Content", row.id)
        result = await gql.execute(document, {"id": gid}, viewer=viewers[who])
        outcome = "ok" if result.errors is None else result.errors[0].extensions["code"]
        expected = write_outcome(who, action, status, visibility)
        assert outcome == expected, (who, action, status, visibility, result.errors)
        if outcome == "NOT_FOUND":
            assert result.errors[0].message == "No content with this id."
    if action == "delete" and who in ("author", "admin"):
        remaining = await gql.data(
            "{ contents(first: 100) { totalCount } }", viewer=viewers["admin"]
        )
        assert remaining["contents"]["totalCount"] == 0


async def test_a_failed_write_changes_nothing(gql, world) -> None:
    viewers, contents = world
    row = contents[("PUBLISHED", "PUBLIC")]
    gid = encode_id("Content", row.id)
    result = await gql.execute(UPDATE, {"id": gid}, viewer=viewers["member"])
    assert result.errors[0].extensions["code"] == "FORBIDDEN"
    data = await gql.data("query($id: ID!) { content(id: $id) { title } }", {"id": gid})
    assert data["content"]["title"] == "PUBLISHED/PUBLIC"


@pytest.mark.parametrize("who", VIEWERS)
async def test_email_and_preferences(gql, world, who) -> None:
    viewers, _ = world
    data = await gql.data(
        '{ user(handle: "author") { email preferences { languages } } }', viewer=viewers[who]
    )
    expected_email = "author@example.test" if who in ("author", "admin") else None
    expected_preferences = {"languages": []} if who == "author" else None
    assert data["user"] == {"email": expected_email, "preferences": expected_preferences}

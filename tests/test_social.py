"""Follows, reactions, preferences and notifications: each the viewer's own."""

import pytest

from resolvers.ids import encode_id
from resolvers.viewer import Viewer
from tests.factories import make_content, make_user

INBOX = "query($unread: Boolean) { notifications(unreadOnly: $unread) { totalCount edges { node { id kind actor { handle } read } } } }"


@pytest.fixture
async def people(db):
    ada = await make_user(db, handle="ada")
    bob = await make_user(db, handle="bob")
    return ada, bob


async def test_follow_and_unfollow(gql, people) -> None:
    ada, bob = people
    as_ada = Viewer.member(ada.id)
    query = "mutation($h: String!) { follow(handle: $h) { handle followerCount viewerFollows } }"
    followed = await gql.data(query, {"h": "@Bob"}, viewer=as_ada)
    assert followed["follow"] == {"handle": "bob", "followerCount": 1, "viewerFollows": True}
    twice = await gql.data(query, {"h": "bob"}, viewer=as_ada)
    assert twice["follow"]["followerCount"] == 1, "following twice is one follow"
    me = await gql.data('{ user(handle: "ada") { followingCount } }', viewer=as_ada)
    assert me["user"]["followingCount"] == 1
    inbox = await gql.data(INBOX, viewer=Viewer.member(bob.id))
    assert inbox["notifications"]["totalCount"] == 1, "one NEW_FOLLOWER, not two"
    assert inbox["notifications"]["edges"][0]["node"]["actor"] == {"handle": "ada"}

    unfollowed = await gql.data(
        'mutation { unfollow(handle: "bob") { followerCount viewerFollows } }', viewer=as_ada
    )
    assert unfollowed["unfollow"] == {"followerCount": 0, "viewerFollows": False}


async def test_following_yourself_or_nobody_is_refused(gql, people) -> None:
    ada, _ = people
    self_follow = await gql.execute(
        'mutation { follow(handle: "ada") { id } }', viewer=Viewer.member(ada.id)
    )
    assert self_follow.errors[0].extensions["code"] == "BAD_USER_INPUT"
    assert "yourself" in self_follow.errors[0].message
    nobody = await gql.execute(
        'mutation { follow(handle: "nobody") { id } }', viewer=Viewer.member(ada.id)
    )
    assert nobody.errors[0].extensions["code"] == "NOT_FOUND"


async def test_react_and_unreact(gql, db, people) -> None:
    ada, bob = people
    content = await make_content(db, ada, title="post")
    gid = encode_id("Content", content.id)
    as_bob = Viewer.member(bob.id)
    react = "mutation($id: ID!) { react(contentId: $id) { reactionCount viewerHasReacted } }"
    assert (await gql.data(react, {"id": gid}, viewer=as_bob))["react"] == {
        "reactionCount": 1,
        "viewerHasReacted": True,
    }
    assert (await gql.data(react, {"id": gid}, viewer=as_bob))["react"]["reactionCount"] == 1
    inbox = await gql.data(INBOX, viewer=Viewer.member(ada.id))
    assert [e["node"]["kind"] for e in inbox["notifications"]["edges"]] == ["REACTION"]
    unreact = "mutation($id: ID!) { unreact(contentId: $id) { reactionCount viewerHasReacted } }"
    assert (await gql.data(unreact, {"id": gid}, viewer=as_bob))["unreact"] == {
        "reactionCount": 0,
        "viewerHasReacted": False,
    }


async def test_reactions_need_published_visible_content(gql, db, people) -> None:
    ada, bob = people
    draft = await make_content(db, ada, status="DRAFT")
    private = await make_content(db, ada, visibility="PRIVATE")
    react = "mutation($id: ID!) { react(contentId: $id) { id } }"
    hidden = await gql.execute(
        react, {"id": encode_id("Content", draft.id)}, viewer=Viewer.member(bob.id)
    )
    assert hidden.errors[0].extensions["code"] == "NOT_FOUND"
    hidden = await gql.execute(
        react, {"id": encode_id("Content", private.id)}, viewer=Viewer.member(bob.id)
    )
    assert hidden.errors[0].extensions["code"] == "NOT_FOUND"
    own_draft = await gql.execute(
        react, {"id": encode_id("Content", draft.id)}, viewer=Viewer.member(ada.id)
    )
    assert own_draft.errors[0].extensions["code"] == "FORBIDDEN"


async def test_notifications_page_and_mark_read(gql, db, people) -> None:
    ada, _ = people
    fans = [await make_user(db) for _ in range(5)]
    for fan in fans:
        await gql.data('mutation { follow(handle: "ada") { id } }', viewer=Viewer.member(fan.id))
    as_ada = Viewer.member(ada.id)
    page = await gql.data(
        "{ notifications(first: 2) { edges { node { id } } pageInfo { hasNextPage endCursor } } }",
        viewer=as_ada,
    )
    rest = await gql.data(
        "query($a: String) { notifications(first: 10, after: $a) { edges { node { id } } pageInfo { hasNextPage } } }",
        {"a": page["notifications"]["pageInfo"]["endCursor"]},
        viewer=as_ada,
    )
    ids = [e["node"]["id"] for e in page["notifications"]["edges"] + rest["notifications"]["edges"]]
    assert len(ids) == len(set(ids)) == 5
    assert rest["notifications"]["pageInfo"]["hasNextPage"] is False

    marked = await gql.data(
        "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }",
        {"ids": ids[:2]},
        viewer=as_ada,
    )
    assert marked == {"markNotificationsRead": 2}
    unread = await gql.data(INBOX, {"unread": True}, viewer=as_ada)
    assert unread["notifications"]["totalCount"] == 3
    assert (await gql.data("mutation { markNotificationsRead }", viewer=as_ada)) == {
        "markNotificationsRead": 3
    }
    assert (await gql.data(INBOX, {"unread": True}, viewer=as_ada))["notifications"][
        "totalCount"
    ] == 0


async def test_notifications_are_their_recipients_alone(gql, db, people) -> None:
    ada, bob = people
    await gql.data('mutation { follow(handle: "ada") { id } }', viewer=Viewer.member(bob.id))
    ada_inbox = await gql.data(INBOX, viewer=Viewer.member(ada.id))
    (edge,) = ada_inbox["notifications"]["edges"]
    nid = edge["node"]["id"]
    as_bob = Viewer.member(bob.id)
    assert (
        await gql.data("query($id: ID!) { node(id: $id) { id } }", {"id": nid}, viewer=as_bob)
    ) == {"node": None}
    stolen = await gql.data(
        "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }", {"ids": [nid]}, viewer=as_bob
    )
    assert stolen == {"markNotificationsRead": 0}
    own = await gql.data(
        "query($id: ID!) { node(id: $id) { id } }", {"id": nid}, viewer=Viewer.member(ada.id)
    )
    assert own == {"node": {"id": nid}}
    wrong_type = await gql.execute(
        "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }",
        {"ids": [encode_id("User", ada.id)]},
        viewer=Viewer.member(ada.id),
    )
    assert wrong_type.errors[0].extensions["code"] == "BAD_USER_INPUT"


UPDATE_PREFS = """
mutation($input: PreferencesInput!) {
  updatePreferences(input: $input) {
    followedTags { tag { name } weight } mutedTags { name } mutedAuthors { handle } languages
  }
}
"""


async def test_preferences_replace_given_lists_and_keep_the_rest(gql, people) -> None:
    ada, _ = people
    as_ada = Viewer.member(ada.id)
    first = await gql.data(
        UPDATE_PREFS,
        {
            "input": {
                "followedTags": [{"tag": "Python", "weight": 0.8}, {"tag": "java", "weight": -0.5}],
                "mutedTags": ["crypto"],
                "mutedAuthors": ["@bob"],
                "languages": ["EN", "de"],
            }
        },
        viewer=as_ada,
    )
    assert first["updatePreferences"] == {
        "followedTags": [
            {"tag": {"name": "python"}, "weight": 0.8},
            {"tag": {"name": "java"}, "weight": -0.5},
        ],
        "mutedTags": [{"name": "crypto"}],
        "mutedAuthors": [{"handle": "bob"}],
        "languages": ["en", "de"],
    }
    second = await gql.data(UPDATE_PREFS, {"input": {"languages": []}}, viewer=as_ada)
    assert second["updatePreferences"]["languages"] == []
    assert second["updatePreferences"]["mutedTags"] == [{"name": "crypto"}], "left out: kept"
    read_back = await gql.data(
        """{ viewer { preferences { mutedAuthors { handle }
                 followedTags { tag { name viewerAffinity } } mutedTags { name viewerAffinity } } }
             tags { totalCount } }""",
        viewer=as_ada,
    )
    preferences = read_back["viewer"]["preferences"]
    assert preferences["mutedAuthors"] == [{"handle": "bob"}]
    affinities = {t["tag"]["name"]: t["tag"]["viewerAffinity"] for t in preferences["followedTags"]}
    affinities |= {t["name"]: t["viewerAffinity"] for t in preferences["mutedTags"]}
    assert affinities == {"python": 0.8, "java": -0.5, "crypto": 0.0}
    assert read_back["tags"]["totalCount"] == 0, "tags on no visible content are not listed"


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"followedTags": [{"tag": "a", "weight": 1.5}]}, "followedTags", "between -1 and 1"),
        (
            {"followedTags": [{"tag": "a", "weight": 0.1}, {"tag": "A", "weight": 0.2}]},
            "followedTags",
            "twice",
        ),
        (
            {"followedTags": [{"tag": "a", "weight": 0.1}], "mutedTags": ["a"]},
            "mutedTags",
            "not both",
        ),
        ({"mutedAuthors": ["nobody_here"]}, "mutedAuthors", "no user"),
        ({"mutedAuthors": ["ada"]}, "mutedAuthors", "yourself"),
        ({"languages": ["klingon"]}, "languages", "ISO 639-1"),
        ({"mutedTags": ["bad tag!"]}, "mutedTags", "not a tag name"),
    ],
)
async def test_preferences_validation(gql, people, payload, field, words) -> None:
    ada, _ = people
    as_ada = Viewer.member(ada.id)
    result = await gql.execute(UPDATE_PREFS, {"input": payload}, viewer=as_ada)
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert f"`{field}`" in error.message and words in error.message, error.message
    stored = await gql.data(
        "{ viewer { preferences { followedTags { weight } languages } } }", viewer=as_ada
    )
    assert stored["viewer"]["preferences"] == {"followedTags": [], "languages": []}


async def test_later_mutations_in_one_request_see_earlier_ones(gql, people) -> None:
    ada, _ = people
    data = await gql.data(
        """mutation {
          a: follow(handle: "bob") { followerCount viewerFollows }
          b: unfollow(handle: "bob") { followerCount viewerFollows }
          c: follow(handle: "bob") { followerCount viewerFollows }
        }""",
        viewer=Viewer.member(ada.id),
    )
    assert data == {
        "a": {"followerCount": 1, "viewerFollows": True},
        "b": {"followerCount": 0, "viewerFollows": False},
        "c": {"followerCount": 1, "viewerFollows": True},
    }

"""Who may see and do what. Every access rule of the gateway lives here; resolvers ask,
and db/ turns the content decision into SQL so lists, counts and lookups all agree."""

from db.reads.access import ContentAccess
from db.tables import Content
from resolvers.viewer import Viewer


def content_filter(viewer: Viewer) -> ContentAccess:
    """PUBLISHED + PUBLIC to anyone, PUBLISHED + MEMBERS to any signed-in viewer,
    everything to its author, all to an ADMIN."""
    if viewer.is_admin:
        return ContentAccess(everything=True)
    if viewer.id is None:
        return ContentAccess(visibilities=("PUBLIC",))
    return ContentAccess(visibilities=("PUBLIC", "MEMBERS"), author_id=viewer.id)


def member_filter() -> ContentAccess:
    """What any signed-in member sees of content that is not theirs: the audience of
    notifications sent to followers."""
    return ContentAccess(visibilities=("PUBLIC", "MEMBERS"))


def can_see_email(viewer: Viewer, user_id: int) -> bool:
    """A user's email is theirs and the admins' to see."""
    return viewer.is_admin or (viewer.id is not None and viewer.id == user_id)


def can_see_preferences(viewer: Viewer, user_id: int) -> bool:
    """Preferences are private even from admins: they describe a person's habits."""
    return viewer.id is not None and viewer.id == user_id


def can_edit_content(viewer: Viewer, content: Content) -> bool:
    """Editing and publishing are the author's alone; admins moderate, they do not write."""
    return viewer.id is not None and viewer.id == content.author_id


def can_publish_content(viewer: Viewer, content: Content) -> bool:
    return can_edit_content(viewer, content)


def can_archive_content(viewer: Viewer, content: Content) -> bool:
    """The author, or an admin taking content down."""
    return viewer.is_admin or can_edit_content(viewer, content)


def can_delete_content(viewer: Viewer, content: Content) -> bool:
    return can_archive_content(viewer, content)


def can_react_to(viewer: Viewer, content: Content) -> bool:
    """Reactions are for published content, from signed-in viewers who can see it."""
    return viewer.signed_in and content.status == "PUBLISHED"


def can_manage_webhooks(viewer: Viewer) -> bool:
    """Webhooks send the site's content to other systems: an operator's decision."""
    return viewer.is_admin

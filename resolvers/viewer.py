"""Who is asking. Never None: anonymous requests get Viewer.anonymous()."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Viewer:
    id: int | None
    role: str | None = None

    @classmethod
    def anonymous(cls) -> "Viewer":
        return cls(id=None)

    @classmethod
    def member(cls, user_id: int) -> "Viewer":
        return cls(id=user_id, role="MEMBER")

    @classmethod
    def admin(cls, user_id: int) -> "Viewer":
        return cls(id=user_id, role="ADMIN")

    @property
    def signed_in(self) -> bool:
        return self.id is not None

    @property
    def is_admin(self) -> bool:
        return self.role == "ADMIN"

"""Sign-in and sign-up throttling, so that no one can guess passwords or mint accounts at
the speed of the network.

Failed sign-ins are limited per login (whoever tries it) and per address (whatever
logins it tries); sign-ups per address. Each limit is a bucket of attempts that empties
at a steady rate: over it, RATE_LIMITED with the seconds until the next attempt fits.
Nothing ever locks an account: a login someone hammers waits one interval at a time, and
a successful sign-in gives its attempt back. Buckets live in Postgres
(db/writes/throttle.py), so every process and replica shares them.
"""

import hashlib
import math
from dataclasses import dataclass, field

from db.writes import throttle as buckets
from db.writes.throttle import Charge
from resolvers.context import Context
from resolvers.errors import GatewayError


class TooManyAttempts(GatewayError):
    code = "RATE_LIMITED"

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"{what}; retry in {retry_after} s.", retryAfter=retry_after)


@dataclass(frozen=True, slots=True)
class Allowance:
    """`attempts` at once, coming back evenly over `window` seconds."""

    attempts: int
    window: float

    def charge(self, key: str) -> Charge:
        return Charge(key, interval=self.window / self.attempts, window=self.window)


def _address(ctx: Context) -> str:
    return ctx.client_address or "unknown"


def _login_key(login: str) -> str:
    # Hashed: the table keeps no record of the logins people tried, and a megabyte of
    # login makes a key of the usual size.
    return "sign-in:login:" + hashlib.sha256(login.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class AuthThrottle:
    sign_in_per_login: Allowance = field(default_factory=lambda: Allowance(10, 900.0))
    sign_in_per_address: Allowance = field(default_factory=lambda: Allowance(50, 900.0))
    sign_up_per_address: Allowance = field(default_factory=lambda: Allowance(20, 3600.0))

    def _sign_in_charges(self, ctx: Context, login: str) -> list[Charge]:
        return [
            self.sign_in_per_login.charge(_login_key(login)),
            self.sign_in_per_address.charge("sign-in:address:" + _address(ctx)),
        ]

    async def begin_sign_in(self, ctx: Context, login: str) -> None:
        """Takes one attempt for `login` from this address before its password is checked
        (so that concurrent guesses cannot pass together); RATE_LIMITED when either
        bucket is full. `end_sign_in` gives it back if the password was right."""
        await _take(
            ctx,
            self._sign_in_charges(ctx, login),
            ["Too many failed sign-ins for this login", "Too many failed sign-ins from here"],
        )

    async def end_sign_in(self, ctx: Context, login: str, *, succeeded: bool) -> None:
        if succeeded:
            async with ctx.db.session() as session:
                await buckets.refund(session, self._sign_in_charges(ctx, login))
                await session.commit()

    async def sign_up(self, ctx: Context) -> None:
        """Takes one sign-up from this address's bucket; RATE_LIMITED when it is full."""
        charge = self.sign_up_per_address.charge("sign-up:address:" + _address(ctx))
        await _take(ctx, [charge], ["Too many sign-ups from this address"])


async def _take(ctx: Context, charges: list[Charge], refusals: list[str]) -> None:
    async with ctx.db.session() as session:
        taken = await buckets.take(session, charges)
        if all(taken):
            await session.commit()
            return
        # Refused: nothing is kept, and the fullest bucket says how long to wait.
        await session.rollback()
        backlog = await buckets.backlogs(session, [c.key for c in charges])
    waits = [
        (backlog.get(c.key, 0.0) + c.interval - c.window, what)
        for c, what, ok in zip(charges, refusals, taken, strict=True)
        if not ok
    ]
    wait, what = max(waits)
    raise TooManyAttempts(what, max(1, math.ceil(wait)))

"""`serve --store redis://HOST:PORT/DB`: one state for replicas on many machines.

Redis holds the truth: a hash per table (`<prefix>t:<table>`: id → `[order, record]` as JSON),
the set of tables, and a stream, the journal, with one entry per committed transaction. Each
process keeps the tables in memory (`Store`, indexes included) as a cache it brings up to date
from the journal: reads cost no Redis round trip but a catch-up before each request (one for
all the requests of a turn of the event loop, `OPEN_TAIL`), so a write acknowledged by one
replica is seen by the next request to any other.

A handler that only inserts new records and reads nothing commits them without the lease, in
one script that refuses while the lease is held (`INSERT`, `RedisStore.write`). Any other
transaction takes a lease (`SET NX PX`) and catches up in one script, runs in memory, then
commits in one script that checks it still holds the lease and that nobody wrote meanwhile,
writes the hashes, appends the journal entry and releases the lease: a check made against the
cache (a unique name, a quota, a one-time code) holds across replicas. A failed commit leaves
the cache stale, reloaded from the hashes before the next use. A process that finds its place
in the journal trimmed away, or a new `epoch` key (Redis restarted without persistence),
reloads too. Durability is Redis' own: with `appendfsync always` an acknowledged write survives
a Redis restart (`docs/redis.md`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import StoreUnavailable
from .jsonio import dumps
from .redis_wire import Script, Wire
from .store import Record, Store

log = logging.getLogger(__name__)
T = TypeVar("T")

_OLDER = """
local function older(a, b)  -- stream id a comes before b
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
"""

# The catch-up, as a Lua function other scripts call too (`shared_redis.ADMIT`): p the prefix,
# then the epoch and last applied id this process holds, a lease token ('' to read only), the
# lease's ms, the most entries to return.
CATCH_UP_FN = (
    _OLDER
    + """
local function catch_up(p, epoch, last, token, lease_ms, count)
  if token ~= '' then
    if redis.call('GET', p .. 'lease') == token then  -- handed over to us (`hand_over`)
      redis.call('PEXPIRE', p .. 'lease', lease_ms)
    else
      -- one waiting replica is next: others wait while it does (a holder hands the lease over
      -- with its next commit when someone waits, and wakes it: `<p>handoff:<token>`)
      local wants = redis.call('GET', p .. 'wants')
      if (wants and wants ~= token) or not redis.call('SET', p .. 'lease', token, 'NX', 'PX', lease_ms) then
        if not wants then
          redis.call('SET', p .. 'wants', token, 'PX', 250)
          return {'busy', 'next'}
        end
        return {'busy', wants == token and 'next' or 'queued'}
      end
      if wants then redis.call('DEL', p .. 'wants') end
    end
  end
  local got = redis.call('MGET', p .. 'clock', p .. 'epoch', p .. 'trimmed', p .. 'head')
  local offset, trimmed = got[1] or '0', got[3]
  if got[2] ~= epoch then return {'reload', offset} end
  if trimmed and older(last, trimmed) then return {'reload', offset} end
  if (got[4] or '0-0') == last then return {'ok', offset, {}} end
  return {'ok', offset, redis.call('XRANGE', p .. 'journal', '(' .. last, '+', 'COUNT', count)}
end
"""
)

# ARGV: prefix, epoch, last applied id, lease token ('' to read only), lease ms, max entries
CATCH_UP = CATCH_UP_FN + "return catch_up(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])\n"

# The requests of one turn of a replica's event loop, opened together (`RedisStore.open`): one
# catch-up, then each request's part in the order they came (the caller's `part`, a Lua function
# part(keys, at, known): its keys, where its arguments begin in ARGV, the clock offset the
# catch-up read). ARGV: the catch-up's six, then per request its number of keys, its number of
# arguments and its arguments; KEYS: every request's keys, in order. Returns {catch-up, {each
# request's part's answer}}.
OPEN_TAIL = """
local caught = catch_up(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
local known = caught[1] ~= 'busy' and caught[2] or nil
local answers, k, a = {}, 1, 7
while a <= #ARGV do
  local nk, na = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local keys = {}
  for i = 1, nk do keys[i] = KEYS[k + i - 1] end
  k = k + nk
  answers[#answers + 1] = nk > 0 and part(keys, a + 2, known) or false
  a = a + 2 + na
end
return {caught, answers}
"""
NO_PART = "local function part() return false end\n"


@functools.cache
def _open_script(part: str) -> str:
    return CATCH_UP_FN + part + OPEN_TAIL


_Opening = tuple[Sequence[str], Sequence[Any], "asyncio.Future[Any]"]  # keys, arguments, answer

# ARGV: prefix, a new epoch (kept if there is one already)
SNAPSHOT = """
local p = ARGV[1]
redis.call('SET', p .. 'epoch', ARGV[2], 'NX')
local out = {redis.call('GET', p .. 'epoch'), redis.call('GET', p .. 'head') or '0-0',
             redis.call('GET', p .. 'clock') or '0', redis.call('GET', p .. 'lhead') or '0-0'}
for _, t in ipairs(redis.call('SMEMBERS', p .. 'tables')) do
  out[#out + 1] = t
  out[#out + 1] = redis.call('HGETALL', p .. 't:' .. t)
end
return out
"""

# Giving the lease back (Lua): to the replica waiting for it, if one is (set to its token for
# 250 ms, which its catch-up extends, and woken by a push on its handoff list), else freed.
HAND_OVER_FN = """
local function hand_over(p)
  local wants = redis.call('GET', p .. 'wants')
  if wants then
    redis.call('SET', p .. 'lease', wants, 'PX', 250)
    redis.call('DEL', p .. 'wants')
    redis.call('RPUSH', p .. 'handoff:' .. wants, '1')
    redis.call('PEXPIRE', p .. 'handoff:' .. wants, 1000)
  else
    redis.call('DEL', p .. 'lease')
  end
end
"""

# Keeping the journal to `keep` entries (Lua): the oldest go, the last one gone is remembered
# (a replica behind it reloads: `catch_up`).
TRIM_FN = """
local function trim(p, keep)
  while redis.call('XLEN', p .. 'journal') > keep do
    local first = redis.call('XRANGE', p .. 'journal', '-', '+', 'COUNT', 1)[1][1]
    redis.call('XDEL', p .. 'journal', first)
    redis.call('SET', p .. 'trimmed', first)
  end
end
"""

# ARGV: prefix, lease token ('' for the writes of a read: refused while anyone holds the lease),
# expected head (for the writes of a read: the last entry not of `INSERT`), transaction id,
# journal entry, journal length, the lease's new ms to keep it (0: give it back), then (op,
# table, id, value) for each write. Returns {'ok', entry id, whether another replica waits}.
COMMIT = (
    HAND_OVER_FN
    + TRIM_FN
    + """
local p = ARGV[1]
if redis.call('GET', p .. 'committed') == ARGV[4] then
  return {'ok', redis.call('GET', p .. 'committed_id')}
end
if ARGV[2] == '' then  -- inserts of others (`INSERT`) meanwhile change no record a read wrote
  if redis.call('EXISTS', p .. 'lease') == 1 then return {'lost'} end
  if (redis.call('GET', p .. 'lhead') or '0-0') ~= ARGV[3] then return {'moved'} end
else
  if redis.call('GET', p .. 'lease') ~= ARGV[2] then return {'lost'} end
  if (redis.call('GET', p .. 'head') or '0-0') ~= ARGV[3] then return {'moved'} end
end
for i = 8, #ARGV, 4 do
  local op, t = ARGV[i], p .. 't:' .. ARGV[i + 1]
  if op == 'put' then
    redis.call('HSET', t, ARGV[i + 2], ARGV[i + 3])
    redis.call('SADD', p .. 'tables', ARGV[i + 1])
    local order = tonumber(string.match(ARGV[i + 3], '^%[(%d+),'))
    if order and order >= tonumber(redis.call('HGET', p .. 'next', ARGV[i + 1]) or '0') then
      redis.call('HSET', p .. 'next', ARGV[i + 1], order + 1)
    end
  elseif op == 'del' then
    redis.call('HDEL', t, ARGV[i + 2])
  else
    redis.call('DEL', t)
    redis.call('SREM', p .. 'tables', ARGV[i + 1])
    redis.call('HDEL', p .. 'next', ARGV[i + 1])
  end
end
local id = redis.call('XADD', p .. 'journal', '*', 'ops', ARGV[5])
redis.call('SET', p .. 'head', id)
redis.call('SET', p .. 'lhead', id)
redis.call('SET', p .. 'committed', ARGV[4])
redis.call('SET', p .. 'committed_id', id)
trim(p, tonumber(ARGV[6]))
if ARGV[2] ~= '' then
  if ARGV[7] == '0' then hand_over(p) else redis.call('PEXPIRE', p .. 'lease', ARGV[7]) end
end
return {'ok', id, redis.call('EXISTS', p .. 'wants')}
"""
)

# A transaction that only inserts new records and read nothing (`RedisStore.write`), committed
# without the lease: refused while a replica holds it, or when an id is taken. Each record's
# place in the listing order is given here (`<p>next`, per table: past every order stored), and
# the answer is the catch-up from the caller's last entry, its own included: every cache applies
# such inserts in journal order. ARGV: the catch-up's six (token ''), a transaction id (unused:
# for MONITOR's eyes), journal length, then (table, id, order proposed, record JSON) per insert.
INSERT = (
    CATCH_UP_FN
    + TRIM_FN
    + """
local p = ARGV[1]
if redis.call('EXISTS', p .. 'lease') == 1 then return {'lost'} end
for i = 9, #ARGV, 4 do
  if redis.call('HEXISTS', p .. 't:' .. ARGV[i], ARGV[i + 1]) == 1 then return {'taken'} end
end
local ops = {}
for i = 9, #ARGV, 4 do
  local t = ARGV[i]
  local order = math.max(tonumber(redis.call('HGET', p .. 'next', t) or '0'), tonumber(ARGV[i + 2]))
  redis.call('HSET', p .. 'next', t, order + 1)
  redis.call('HSET', p .. 't:' .. t, ARGV[i + 1], '[' .. order .. ',' .. ARGV[i + 3] .. ']')
  redis.call('SADD', p .. 'tables', t)
  ops[#ops + 1] = '["put",' .. cjson.encode(t) .. ',' .. order .. ',' .. ARGV[i + 3] .. ']'
end
local id = redis.call('XADD', p .. 'journal', '*', 'ops', '[' .. table.concat(ops, ',') .. ']', 'blind', '1')
redis.call('SET', p .. 'head', id)
trim(p, tonumber(ARGV[8]))
return {'ok', id, catch_up(p, ARGV[2], ARGV[3], '', ARGV[5], ARGV[6])}
"""
)

# ARGV: prefix, lease token
RELEASE = (
    HAND_OVER_FN
    + """
if redis.call('GET', ARGV[1] .. 'lease') == ARGV[2] then hand_over(ARGV[1]) end
return 0
"""
)


def connect(url: str) -> redis.Redis:
    """A client that never hangs: a connection attempt gives up after 1 s, a reply after 2 s;
    one immediate retry on a broken connection (Redis restarted: the pool reconnects)."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry=Retry(NoBackoff(), 1, (redis.ConnectionError,)),
    )


@dataclass(slots=True)
class Standing:
    """One request's standing with the store, from `open` to `settle` (a context variable, so
    it follows the request into `asyncio.to_thread`)."""

    writer: bool
    locked: bool = False  # a writer's turn (`ready`), held until `settle`
    upsets: int = 0  # `RedisStore._upsets` when the request was caught up


_standing: ContextVar[Standing | None] = ContextVar("redis_standing", default=None)


class _Contended(BaseException):
    """A handler run without the lease (`RedisStore.write`) read the store, or changed a record
    that exists: it runs again under the lease. A BaseException, so no handler's `except
    Exception` takes it for its own failure."""


def _sid(entry: str) -> tuple[int, int]:
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # no event loop in this thread
        return None


def _current_task() -> object | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop in this thread
        return None


class RedisStore(Store):
    """The tables in Redis, cached in this process; see the module's docstring."""

    LEASE_MS = 3000  # a transaction longer than this loses its lease and is refused (503)
    WAIT = 3.5  # seconds to wait for another replica's lease (it expires after LEASE_MS)
    JOURNAL = 10_000  # journal entries kept; a process further behind reloads the hashes
    follows = True  # other replicas write: `version()` catches up too
    remote = True
    BATCH = 1000  # journal entries read at once
    RESEND = 2.0  # seconds a commit whose connection broke is sent again (a timeout is not)
    HOLD = 0.0  # seconds a process keeps the lease for its writers once another replica asked
    # (a hand-over costs the next one round trip: `hand_over` wakes it; 20 ms when it polled)
    PAUSE = 0.002  # the longest pause between two attempts at the lease
    HANDED_WAIT = 0.25  # seconds the next in line waits to be handed the lease before asking again

    def __init__(self, url: str, prefix: str = "sandbox:") -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self.redis = connect(url)
        self._catch_up = self.redis.register_script(CATCH_UP)
        self._snapshot = self.redis.register_script(SNAPSHOT)
        self._commit = self.redis.register_script(COMMIT)
        self._release = self.redis.register_script(RELEASE)
        self.clock_offset = 0.0  # the shared clock's offset, as of the last catch-up
        self._epoch = ""
        self._last = "0-0"  # the last journal entry applied
        self._stale = True  # the cache must be reloaded before it is used
        self._fresh_for: object | None = None  # the request (asyncio task) already caught up
        self._depth = 0
        self._order: dict[str, dict[str, int]] = {}  # table -> id -> place in the listing order
        self._next: dict[str, int] = {}
        self._pending: list[list[Any]] = []  # the transaction's writes: [op, table, ...]
        self._pending_base = ""  # the last entry not of `INSERT` the pending writes of reads were made on
        self._lhead = "0-0"  # the last entry applied not of `INSERT` (`<p>lhead`)
        # requests on an event loop (`open`/`settle`): an asyncio client of their loop, one
        # writer at a time in this process, and a count of the events that undid writes
        # requests may have read (a refused commit, a reload over pending writes)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wire: Wire | None = None
        self._waiting: Wire | None = None  # for the blocking wait of `_handed`
        self._ascripts: dict[str, Script] = {}
        self._opening: dict[str, list[_Opening]] = {}  # this turn's requests to open, by part
        self._running: set[asyncio.Future[None]] = set()
        self._writer = asyncio.Lock()
        self._writers = 0  # writers between `ready` and `settle` (waiting for their turn, or in it)
        self._held = ""  # the lease this process keeps across its writers' commit rounds
        self._yield = False  # another replica asked for the lease: give it back at the next round
        self._wanted = 0.0  # when another replica first asked for it (monotonic; 0: nobody asked)
        self._loose = False  # the pending writes are a read's, made without the lease
        self._next_round: asyncio.Future[None] | None = None
        self._inflight: asyncio.Future[None] | None = None
        self._committer: asyncio.Future[None] | None = None
        self._upsets = 0
        self._blind: list[list[Any]] | None = None  # a lease-free attempt's inserts (`write`)
        self._blinder = 0  # the thread running it
        self.blind_commits = 0  # writes committed without the lease, and those run again under it
        self.blind_retries = 0
        with self.lock:
            self.call(self._reload)

    def key(self, name: str) -> str:
        return self.prefix + name

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn`; Redis unreachable or failing becomes `StoreUnavailable` (503, Retry-After)."""
        try:
            return fn()
        except redis.RedisError as exc:
            self._stale = self._stale or self._depth > 0
            log.warning("redis at %s: %s", self.url, exc)
            raise StoreUnavailable(f"redis: {exc}") from None

    # -- catching up ----------------------------------------------------------------------
    def _reload(self) -> None:
        """Load every table from the hashes, with the journal position they stand at."""
        self._install(self._snapshot(args=[self.prefix, os.urandom(8).hex()]))

    def _install(self, out: list[Any]) -> None:
        for table in list(self._tables):
            super()._dropped(table)
        self._order.clear()
        self._next.clear()
        self._epoch, self._last = _text(out[0]), _text(out[1])
        self.clock_offset, self._lhead = float(out[2]), _text(out[3])
        for i in range(4, len(out), 2):
            table, flat = _text(out[i]), out[i + 1]
            rows = sorted((orjson.loads(v) for v in flat[1::2]), key=lambda row: row[0])
            for order, record in rows:
                self._load(table, order, record)
        self._stale = False

    def _follow(self, token: str = "") -> bool:
        """Apply the journal's new entries (taking the lease first, with `token`); False while
        another process holds the lease."""
        if self._stale:
            if token and self._catch_up(args=self._catch_args(token))[0] == b"busy":
                return False
            self._reload()
            return True
        while True:
            out = self._catch_up(args=self._catch_args(token))
            status = out[0]
            if status == b"busy":
                return False
            self.clock_offset = float(out[1])
            if status == b"reload":
                self._reload()
                return True
            for entry_id, fields in out[2]:
                for op in orjson.loads(fields[1]):  # the fields, flat: ["ops", entry(, "blind", "1")]
                    self._apply(op)
                self._last = _text(entry_id)
                if len(fields) == 2:
                    self._lhead = self._last
            if len(out[2]) < self.BATCH:
                return True
            token = ""  # the lease is held (or not wanted): the rest is read as it is

    def _catch_args(self, token: str) -> list[Any]:
        return [self.prefix, self._epoch, self._last, token, self.LEASE_MS, self.BATCH]

    def _load(self, table: str, order: int, record: Record) -> None:
        super()._put(table, record)
        self._order.setdefault(table, {})[record["id"]] = order
        self._next[table] = max(self._next.get(table, 1), order + 1)

    def _apply(self, op: list[Any]) -> None:
        kind, table = op[0], op[1]
        if kind == "put":
            self._load(table, op[2], op[3])
        elif kind == "del":
            row = self._tables.get(table, {}).get(op[2])
            if row is not None:
                super()._remove(table, row)
                self._order[table].pop(op[2], None)
        else:
            super()._dropped(table)
            self._order.pop(table, None)

    def _refresh(self) -> None:
        """Once per request (asyncio task), and always outside one: what any replica
        acknowledged before the request began is seen by it."""
        if self._blind is not None and self._blinder == threading.get_ident():
            raise _Contended  # a read: what the handler decides may depend on other replicas' writes
        if self._depth or _standing.get() is not None:
            return  # a transaction caught up under its lease; a request caught up in `open`
        task = _current_task()
        if task is not None and task is self._fresh_for and not self._stale:
            return
        self.call(self._follow)
        self._fresh_for = task

    # -- transactions ---------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside are applied in memory at once and committed to Redis together when the
        outermost transaction ends: all of them or none (the cache is then reloaded)."""
        if self._blind is not None and self._blinder == threading.get_ident():  # `write`'s attempt
            yield
            return
        standing = _standing.get()
        if standing is not None:  # a request on an event loop: committed in `settle`
            with self._deferred(standing):
                yield
            return
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            token = os.urandom(12).hex()
            self._acquire(token)
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
                self._finish(token)

    def _acquire(self, token: str) -> None:
        deadline = time.monotonic() + self.WAIT
        pause = 0.0005
        while not self.call(lambda: self._follow(token)):
            if time.monotonic() > deadline:
                raise StoreUnavailable("another replica held the store's lease too long")
            time.sleep(pause)
            pause = min(pause * 2, self.PAUSE)
        self._fresh_for = _current_task()

    def _finish(self, token: str) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            self.call(lambda: self._release(args=[self.prefix, token]))
            return
        args = self._commit_args(pending, token, self._last)
        self._depth = 1  # a failure here leaves the cache stale (see `call`)
        try:
            out = self.call(lambda: self._commit(args=args))
        finally:
            self._depth = 0
        if out[0] != b"ok":
            self._stale = True
            self.call(lambda: self._release(args=[self.prefix, token]))
            raise StoreUnavailable(f"commit refused ({_text(out[0])}): the lease expired")
        self._last = self._lhead = _text(out[1])

    @contextmanager
    def _deferred(self, standing: Standing) -> Iterator[None]:
        """A transaction of a request on an event loop: its writes are applied in memory at
        once and sent to Redis after it (`settle`). A writer's (after `ready`), and any made while
        this process holds the lease, go with the next commit round. A read may write too (a
        settled status, a key's last use): with no writer under way here, such writes are sent
        by its `settle` without the lease, refused should anyone have written meanwhile; while a
        writer is under way they are refused at once, before anything is applied."""
        with self.lock:
            if not self._depth and not (standing.locked or self._held):
                if self._writer.locked() or self._inflight is not None:
                    raise StoreUnavailable("a write is under way in this process; the read's own write waits")
                if not self._pending:
                    self._pending_base = self._lhead
                self._loose = True
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1

    # -- requests on an event loop ----------------------------------------------------------
    def ascript(self, text: str) -> Script:
        """`text` as a script of this loop's client (`redis_wire`: pipelined, sent whole on NOSCRIPT)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a first request, or a new loop (tests): its own connection
            if self._waiting is not None:
                self._waiting.close()
            self._loop, self._wire, self._ascripts, self._waiting = loop, Wire(self.url), {}, None
            self._writer, self._writers, self._held, self._yield = asyncio.Lock(), 0, "", False
            self._wanted, self._opening = 0.0, {}
            self._next_round, self._inflight, self._committer = loop.create_future(), None, None
        script = self._ascripts.get(text)
        if script is None:
            assert self._wire is not None
            script = self._ascripts[text] = self._wire.script(text)
        return script

    def on_loop(self) -> bool:
        """Called on the event loop of this store's requests."""
        return self._wire is not None and self._loop is _running_loop()

    def post(self, *parts: Any) -> bool:
        """Send a command nobody waits for, with this loop's next batch (False: not on the
        loop of this store's requests, or its connection is not up: the caller sends it)."""
        return self.on_loop() and self._wire is not None and self._wire.post(*parts)

    async def acall(self, pending: Awaitable[T]) -> T:
        """`call` on the event loop: awaited, never blocking it."""
        try:
            return await pending
        except redis.RedisError as exc:
            log.warning("redis at %s: %s", self.url, exc)
            raise StoreUnavailable(f"redis: {exc}") from None

    async def open(
        self, write: bool, part: str = NO_PART, keys: Sequence[str] = (), args: Sequence[Any] = ()
    ) -> Any:
        """Begin a request: bring the cache up to date, in one round trip shared with the other
        requests of this turn of the event loop, running in the same script the caller's `part`
        (a Lua function, see `OPEN_TAIL`) with `keys` and `args`. Returns its answer (None
        without keys). A writer then awaits `ready` before its handler; `settle` ends the
        request, whatever happened."""
        standing = Standing(write)
        _standing.set(standing)
        try:
            verdict = await self._opened(part, keys, args)
        except BaseException:
            _standing.set(None)
            raise
        standing.upsets = self._upsets
        return verdict

    def _opened(self, part: str, keys: Sequence[str], args: Sequence[Any]) -> asyncio.Future[Any]:
        """A request's place in this turn's batch of `part` (sent once the turn's callbacks ran)."""
        self.ascript(_open_script(part))  # this loop's client
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        batch = self._opening.get(part)
        if batch is None:
            batch = self._opening[part] = []
            loop.call_soon(self._open_batch, part)
        batch.append((keys, args, answer))
        return answer

    def _open_batch(self, part: str) -> None:
        batch = self._opening.pop(part, [])
        if batch:
            task = asyncio.ensure_future(self._run_batch(part, batch))
            self._running.add(task)  # referenced until done (the loop keeps only a weak one)
            task.add_done_callback(self._running.discard)

    async def _run_batch(self, part: str, batch: list[_Opening]) -> None:
        keys: list[Any] = []
        argv: list[Any] = self._catch_args("")
        for ks, args, _ in batch:
            keys += ks
            argv += [len(ks), len(args), *args]
        try:
            caught, answers = await self.acall(self.ascript(_open_script(part))(keys=keys, args=argv))
            await self._caught_up(caught)
        except BaseException as exc:
            for *_, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (*_, answer), verdict in zip(batch, answers, strict=True):
            if not answer.done():
                answer.set_result(verdict)

    async def ready(self) -> None:
        """Before a writer's handler: this process's turn to write (one writer's handler at a
        time), under the store's lease. The lease stays with the process while its writers
        follow one another (their commits go in rounds, see `_commit_rounds`), so only the
        first of a run pays a round trip here."""
        standing = _standing.get()
        if standing is None or not standing.writer or standing.locked:
            return
        self._writers += 1
        try:
            await self._writer.acquire()
        except BaseException:
            self._writers -= 1
            raise
        standing.locked = True
        try:
            if not self._held:
                await self._lease()
        except BaseException:
            standing.locked = False
            self._writers -= 1
            self._writer.release()
            raise
        standing.upsets = self._upsets

    async def _lease(self) -> None:
        token = os.urandom(12).hex()
        deadline = time.monotonic() + self.WAIT
        pause = 0.0005
        while True:
            caught = await self.acall(self.ascript(CATCH_UP)(args=self._catch_args(token)))
            if caught[0] != b"busy":
                break
            if time.monotonic() > deadline:
                raise StoreUnavailable("another replica held the store's lease too long")
            if caught[1] == b"next":  # the holder hands it over with its next commit: woken then
                await self._handed(token)
            else:
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.PAUSE)
        with self.lock:
            if self._pending:  # writes of reads, made without the lease on what may now move
                self._pending.clear()
                self._upsets += 1
                self._stale = True
            self._loose = False
            self._held = token
        await self._caught_up(caught)

    async def _handed(self, token: str) -> None:
        """Wait (on a connection of its own: the command blocks) until the holder hands the
        lease to `token`, or `HANDED_WAIT` passes (the holder died: the lease expires)."""
        if self._waiting is None:
            self._waiting = Wire(self.url)
        await self.acall(self._waiting.execute("BLPOP", self.key("handoff:" + token), self.HANDED_WAIT))

    async def _caught_up(self, caught: list[Any]) -> None:
        """Apply a catch-up's answer; read on while batches come full; reload when told."""
        while True:
            if caught[0] == b"reload" or self._stale:
                await self._areload()
                return
            if self._take(caught[1], caught[2]):
                return
            caught = await self.acall(self.ascript(CATCH_UP)(args=self._catch_args("")))

    def _take(self, offset: bytes, entries: list[Any]) -> bool:
        """Apply a catch-up's entries newer than the cache (answers of concurrent requests may
        overlap); False when a full batch came (there may be more)."""
        with self.lock:
            self.clock_offset = float(offset)
            last = _sid(self._last)
            for entry_id, fields in entries:
                entry = _text(entry_id)
                if _sid(entry) <= last:
                    continue
                for op in orjson.loads(fields[1]):
                    self._apply(op)
                self._last, last = entry, _sid(entry)
                if len(fields) == 2:  # not an `INSERT`'s
                    self._lhead = entry
        return len(entries) < self.BATCH

    async def _areload(self) -> None:
        out = await self.acall(self.ascript(SNAPSHOT)(args=[self.prefix, os.urandom(8).hex()]))
        with self.lock:
            if self._pending:  # writes not yet sent, made on what is now replaced
                self._drop(StoreUnavailable("the store reloaded before these writes were sent"))
            self._install(out)

    async def settle(self) -> None:
        """End the request `open` began: its writes committed (StoreUnavailable, a 503, if not),
        and any it may have read of this process's other writers too; a writer gives back its
        turn at once (the next one's handler runs while this one's commit is under way)."""
        standing = _standing.get()
        if standing is None:
            return
        _standing.set(None)
        if standing.locked:
            self._writers -= 1
            self._writer.release()
        if self._pending and self._loose:
            await self._settle_reader()
        elif self._pending or self._inflight is not None:  # its writes, or writes it may have read
            await asyncio.shield(self._round() if self._pending else self._inflight)  # type: ignore[arg-type]
            return  # that round decides: committed, or StoreUnavailable
        elif standing.locked and self._held and not self._writers:
            self._round()  # the last writer of a run wrote nothing: the round gives the lease back
        if self._upsets != standing.upsets:  # writes it may have read were dropped meanwhile
            raise StoreUnavailable("a write this request may have read was not committed")

    def _round(self) -> asyncio.Future[None]:
        """The commit round that will carry the pending writes (a round is under way, or starts)."""
        assert self._next_round is not None
        if self._committer is None or self._committer.done():
            self._committer = asyncio.ensure_future(self._commit_rounds())
        return self._next_round

    async def _commit_rounds(self) -> None:
        """Commit what writers left pending, one round (one script, one journal entry) at a
        time: writes made while a round is under way go in the next. The lease is kept across
        rounds while writers of this process follow, given back with the last round (or when
        another replica asked for it)."""
        loop = asyncio.get_running_loop()
        while True:
            give_back = self._yield or not self._writers
            if not self._pending and not (self._held and give_back):
                return
            with self.lock:
                batch, self._pending = self._pending, []
                round_, self._next_round = self._next_round, loop.create_future()
            assert round_ is not None
            token, base = self._held, self._last
            if give_back:
                self._held, self._yield, self._wanted = "", False, 0.0
            self._inflight = round_
            out: list[Any]
            try:
                if not batch:
                    await self.acall(self.ascript(RELEASE)(args=[self.prefix, token]))
                    out = [b"ok", self._last.encode(), 0]
                else:
                    out = await self._send(batch, token, base, give_back)
                if out[0] != b"ok":
                    raise StoreUnavailable(f"commit refused ({_text(out[0])}): the lease expired")
            except StoreUnavailable as exc:
                with self.lock:  # what was made on top of the lost writes goes too
                    self._stale = True
                    self._held = ""
                    self._fail(round_, exc)
                    self._drop(exc)
                self._inflight = None
                return
            self._advance(_text(out[1]), base)
            if len(out) > 2 and out[2]:  # another replica waits for the lease: it gets it after
                # at most `HOLD` more of our rounds' time (each hand-over costs everyone round trips)
                now = time.monotonic()
                self._wanted = self._wanted or now
                self._yield = now - self._wanted >= self.HOLD
            round_.set_result(None)
            self._inflight = None

    def _drop(self, exc: StoreUnavailable) -> None:
        """Forget the pending writes (made on what is lost): the writers waiting for them fail."""
        self._pending.clear()
        self._upsets += 1
        if self._next_round is not None and self._loop is not None:
            self._fail(self._next_round, exc)
            self._next_round = self._loop.create_future()

    @staticmethod
    def _fail(round_: asyncio.Future[None], exc: StoreUnavailable) -> None:
        if not round_.done():
            round_.set_exception(exc)
            round_.exception()  # retrieved: awaited or not

    def _advance(self, entry: str, base: str) -> None:
        """Our own commit `entry`, made on `base`, is in the cache: it stands at `entry` now,
        unless a catch-up got past it; a cache reloaded meanwhile from an older snapshot lacks
        it, and reloads again."""
        if _sid(entry) > _sid(self._last):
            if self._last == base:
                self._last = self._lhead = entry
            else:
                self._stale = True

    async def _settle_reader(self) -> None:
        """The writes of reads: sent if nobody changed a record since they were made (inserts
        without the lease may come between), else dropped (the cache reloads); the read that
        made them is answered either way. Committed, the cache keeps its place in the journal:
        the next catch-up applies what came before them, and them again (the same records)."""
        with self.lock:
            pending, self._pending, self._loose = self._pending, [], False
            base = self._pending_base
        try:
            out = await self._send(pending, "", base, True)
        except StoreUnavailable:
            return
        if out[0] != b"ok":
            self._stale = True
            log.info("the writes of a read were not committed (%s); reloading", _text(out[0]))

    async def _send(self, pending: list[list[Any]], token: str, head: str, give_back: bool) -> Any:
        """One commit. A connection lost on the way leaves it unknown whether Redis applied it (a
        Redis killed after its fsync, before its answer): the same commit is sent again for up
        to `RESEND` seconds, which Redis, back on its AOF, answers as done or does now (its
        transaction id is remembered; the lease, restored with the AOF, is still ours)."""
        args = self._commit_args(pending, token, head, give_back)
        until = time.monotonic() + self.RESEND
        try:
            while True:
                try:
                    return await self.ascript(COMMIT)(args=args)
                except redis.ConnectionError:
                    if not token or time.monotonic() > until:
                        raise
                    await asyncio.sleep(0.1)
        except redis.RedisError as exc:  # committed or not, we cannot tell: the cache reloads
            log.warning("redis at %s: %s", self.url, exc)
            self._stale = True
            self._upsets += 1
            raise StoreUnavailable(f"redis: {exc}") from None

    def _commit_args(
        self, pending: list[list[Any]], token: str, head: str, give_back: bool = True
    ) -> list[Any]:
        args: list[Any] = [self.prefix, token, head, os.urandom(12).hex(), dumps(pending), self.JOURNAL]
        args.append(self.LEASE_MS if token and not give_back else 0)
        for op in pending:
            if op[0] == "put":
                args += ["put", op[1], op[3]["id"], dumps([op[2], op[3]])]
            elif op[0] == "del":
                args += ["del", op[1], op[2], ""]
            else:
                args += ["drop", op[1], "", ""]
        return args

    # -- writes without the lease ---------------------------------------------------------------
    async def write(self, fn: Callable[[], T]) -> T:
        """A writing handler `fn`. Run first without the lease when this process has no other
        write under way: if it only inserts new records and reads nothing of the store, its
        inserts are committed by one script (`INSERT`) that needs no lease, so writers on several
        replicas (and `--workers`) overlap; they are not in the cache until committed, then
        applied in journal order like any replica's. A handler that reads, changes or deletes,
        or whose commit is refused (a replica holds the lease, an id is taken), runs again, as
        every writer did before, under the lease (`ready`), on the caught-up cache: so a check
        (a unique name, a quota) and the write it guards stay atomic across replicas."""
        standing = _standing.get()
        if (
            standing is not None
            and standing.writer
            and not standing.locked
            and self.on_loop()
            and not (self._held or self._writers or self._pending or self._inflight is not None)
        ):
            self.lock.acquire()  # the control API's threads use the store meanwhile: not blind
            self._blind, self._blinder = [], threading.get_ident()
            try:
                result = fn()
            except _Contended:
                result, inserts = None, None
            except BaseException:
                if not self._blind:
                    raise  # it failed before any write: its answer stands, as a read's would
                result, inserts = None, None  # failed after inserting: under the lease, as before
            else:
                inserts = self._blind
            finally:
                self._blind = None
                self.lock.release()
            if inserts == []:
                return result  # type: ignore[return-value]  # wrote nothing: nothing to commit
            if inserts and await self._insert(inserts):
                self.blind_commits += 1
                return result  # type: ignore[return-value]
            self.blind_retries += 1
        return await super().write(fn)

    async def _insert(self, inserts: list[list[Any]]) -> bool:
        """Commit a lease-free attempt's inserts; False when refused (run again under the lease).
        A connection lost on the way is not resent: a 503, saved whole or not (the next read
        shows which)."""
        args: list[Any] = [*self._catch_args(""), os.urandom(12).hex(), self.JOURNAL]
        for table, record in inserts:
            args += [table, record["id"], self._next.get(table, 1), dumps(record)]
        out = await self.acall(self.ascript(INSERT)(args=args))
        if out[0] != b"ok":
            return False
        await self._caught_up(out[2])
        return True

    def scan(self, table: str, **equals: Any) -> Iterator[Record]:
        if self._blind is not None and self._blinder == threading.get_ident():
            raise _Contended
        return super().scan(table, **equals)

    def scan_any(self, table: str, field: str, values: Iterable[Any], **equals: Any) -> Iterator[Record]:
        if self._blind is not None and self._blinder == threading.get_ident():
            raise _Contended
        return super().scan_any(table, field, values, **equals)

    def window(
        self, table: str, start: int, stop: int | None, extra: Sequence[Record] = (), /, **equals: Any
    ) -> tuple[list[Record], int]:
        if self._blind is not None and self._blinder == threading.get_ident():
            raise _Contended
        return super().window(table, start, stop, extra, **equals)

    def update(self, table: str, rid: str, changes: Record) -> Record | None:
        if self._blind is not None and self._blinder == threading.get_ident():
            raise _Contended
        return super().update(table, rid, changes)

    def delete(self, table: str, rid: str) -> bool:
        if self._blind is not None and self._blinder == threading.get_ident():
            raise _Contended
        return super().delete(table, rid)

    # -- hooks ----------------------------------------------------------------------------
    def _put(self, table: str, record: Record) -> None:
        if self._blind is not None and self._blinder == threading.get_ident():
            if record["id"] in self._tables.get(table, {}):
                raise _Contended  # a change to a record: under the lease
            if any(t == table and r["id"] == record["id"] for t, r in self._blind):
                raise _Contended
            self._blind.append([table, record])
            return
        orders = self._order.setdefault(table, {})
        order = orders.get(record["id"])
        if order is None:
            order = orders[record["id"]] = self._next.get(table, 1)
            self._next[table] = order + 1
        super()._put(table, record)
        self._pending.append(["put", table, order, record])

    def _remove(self, table: str, record: Record) -> None:
        if self._blind is not None and self._blinder == threading.get_ident():
            raise _Contended
        super()._remove(table, record)
        self._order[table].pop(record["id"], None)
        self._pending.append(["del", table, record["id"]])

    def _dropped(self, table: str) -> None:
        if self._blind is not None and self._blinder == threading.get_ident():
            raise _Contended
        super()._dropped(table)
        self._order.pop(table, None)
        self._pending.append(["drop", table])

    def close(self) -> None:
        self.redis.close()

"""A township's relay queue: its villages' frames, held as opaque bytes in ``relay.db``, apart from the
township's own data (``station.db``), so relayed traffic can never be mistaken for, or crowd out, the
township's own records.

Up, a village's batch frames wait to be pushed to the hub, and its newest signed pull request (one
slot per village: a request, not data) waits to be carried there, as does the claim of a village
enrolled offline (its keys and the token's HMAC over them), which goes first. Down, the hub's answers
wait for the village: the signed acks document of a forwarded push and the feed page that answers a
pull. The
relay reads nothing but the unauthenticated outer header (origin, kind, seq range) and sizes: it cannot
check a village's signature (it holds no village keys) nor open a sealed body. What it could forge, the
village and the hub refuse; what it drops, the chains, gaps and pull nonces reveal.

Limits: a cap per frame (the protocol's), a quota per village and in total, and an expiry. A village's
quota counts only its batches waiting up, the one thing it can grow at will: its single pull-request
slot and the hub's answers waiting for it count against the total only, so answers it has not collected
yet (or that wait for ``node export T --for``) never block what it sends. A push is taken as far as it
fits, in order, and the rest is refused with ``relay_full`` for the village to offer again.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import sqlite_utils
from sqlite_utils import Migrations

from node.relay_frames import Outer, is_village_of, outer
from protocol.enrolment import decode_claim
from protocol.errors import RemoteProtocolError
from replica.errors import Refused

DB_NAME = "relay.db"
# The hub's key history as the hub last answered `GET /v1/keys` to the township's forwarding: public,
# and signed by the hub's root, which every village pinned at enrolment (node/hubkeys.py).
KEYS_NAME = "relay-keys.msgpack"
RELAY_TIERS = ("township", "street")  # the centres that may relay for the villages under them
VILLAGE_QUOTA_BYTES = 64 * 1024 * 1024
TOTAL_QUOTA_BYTES = 512 * 1024 * 1024
EXPIRY_MS = 14 * 24 * 3600 * 1000

relay_migrations = Migrations("sanji.node.relay")


@relay_migrations()
def m001_relay_frames(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE relay_frames (
            id INTEGER PRIMARY KEY,
            village TEXT NOT NULL,
            direction TEXT NOT NULL,      -- 'up' (to the hub) or 'down' (to the village)
            kind TEXT NOT NULL,           -- 'batch' | 'pull' | 'claim' up, 'acks' | 'feed' down
            hash BLOB NOT NULL,           -- SHA-256 of the outer header (a batch's chain hash) or of the frame
            epoch INTEGER NOT NULL DEFAULT 0,
            first_seq INTEGER NOT NULL DEFAULT 0,
            last_seq INTEGER NOT NULL DEFAULT 0,
            size INTEGER NOT NULL,
            data BLOB NOT NULL,
            state TEXT NOT NULL DEFAULT 'waiting',  -- 'waiting', or 'sent' (up: the hub answered it)
            created_ms INTEGER NOT NULL,
            UNIQUE (village, direction, hash))"""
    )
    db.execute("CREATE INDEX relay_by_village ON relay_frames (village, direction, state, id)")


def now_ms() -> int:
    return int(time.time() * 1000)


class Offered(NamedTuple):
    """What a push left at the relay: the leading ``taken`` frames are held (queued now, or already),
    the rest were refused (``refusal``, relay_full) and stay the village's to offer again."""

    village: str
    answers: list[bytes]  # the hub's acks handed over
    taken: int
    refusal: Refused | None


class Collected(NamedTuple):
    """What a pull request collected: the feed pages, and the acks waiting too (a village with nothing
    left to push collects its receipts here, or they would wait out the expiry)."""

    village: str
    pages: list[bytes]
    acks: list[bytes]


class RelayQueue:
    def __init__(self, folder: Path, township: str) -> None:
        self.path = Path(folder) / DB_NAME
        self.township = township
        self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        relay_migrations.apply(sqlite_utils.Database(self.conn))  # relay.db's own set, once each
        self._lock = threading.Lock()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # The relay listener runs each request in a worker thread over this one connection: one
        # transaction at a time, or two villages' statements would interleave in one transaction.
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # -- from a village ----------------------------------------------------------------------------

    def check_origin(self, origin: str) -> None:
        if not is_village_of(self.township, origin):
            raise Refused(
                f"本乡镇只为下辖村（社区）转发，{origin or '未署名的请求'} 不在其中：请直接连区局或用U盘"
                f" (this relay carries only the villages of {self.township})",
                code="not_our_village",
            )

    def _room(self, conn: sqlite3.Connection, village: str, size: int) -> None:
        """Room for one more of the village's batches: its quota counts its batches waiting up only."""
        used_v = conn.execute(
            "SELECT COALESCE(SUM(size), 0) FROM relay_frames WHERE village=? AND direction='up' AND kind='batch'",
            (village,),
        ).fetchone()[0]
        if used_v + size > VILLAGE_QUOTA_BYTES:
            raise Refused(
                "乡镇转发队列中本村的份额已满，本次未收下：变更仍保存在本村，待乡镇与区局同步后再试，或用U盘"
                f" (relay quota reached: {used_v} bytes waiting up for {village})",
                code="relay_full",
            )
        self._room_in_all(conn, size)

    @staticmethod
    def _room_in_all(conn: sqlite3.Connection, size: int) -> None:
        used_all = conn.execute("SELECT COALESCE(SUM(size), 0) FROM relay_frames").fetchone()[0]
        if used_all + size > TOTAL_QUOTA_BYTES:
            raise Refused(
                "乡镇转发队列已满，本次未收下：变更仍保存在本村，待乡镇与区局同步后再试，或用U盘"
                f" (relay quota reached: {used_all} bytes in all)",
                code="relay_full",
            )

    def offer_up(self, frames: list[bytes], at_ms: int, *, hand_over: bool = True) -> Offered:
        """Take a village's push, as far as it fits, in order: queue the frames not held yet, and hand
        over (and forget) the hub's acks waiting for it. The first frame that does not fit ends what is
        taken (the relay forwards in order, so it never holds a later frame without an earlier one);
        that one and the rest are refused, and the village offers them again. A frame already forwarded
        is queued again only when no answer is waiting: the village offers it again because the answer
        that settled it never reached it. Frames read from a stick (``hand_over=False``) leave the acks
        waiting, for ``node export T --for`` to write: nobody is there to take them."""
        heads = []
        for data in frames:
            try:
                heads.append(outer(data))
            except RemoteProtocolError as exc:
                raise Refused(f"不是完整的批次，乡镇未收下 (not a frame: {exc})", code="malformed") from exc
        villages = {h.origin for h in heads}
        if len(villages) != 1 or any(h.kind != "batch" for h in heads):
            raise Refused("一次只能转发一个村的批次 (one village's batches per push)", code="malformed")
        village = villages.pop()
        self.check_origin(village)
        taken, refusal = 0, None
        with self._tx() as conn:
            answers = self._take_down(conn, village, "acks") if hand_over else []
            answered = bool(answers) or (not hand_over and self._waiting(conn, village, "acks"))
            for head, data in zip(heads, frames, strict=True):
                try:
                    self._hold(conn, village, head, data, at_ms, answered)
                except Refused:  # full (its own or in all): the rest stays with the village, in order
                    rest = len(frames) - taken
                    refusal = Refused(
                        f"乡镇转发队列已满，本次只收下前 {taken} 批，其余 {rest} 批未收下：它们仍保存在本村，"
                        "待乡镇与区局下一轮同步腾出空间后自动再送；急用可用U盘送区局"
                        f" ({rest} of {len(frames)} batches not taken, relay quota reached)",
                        code="relay_full",
                    )
                    break
                taken += 1
        return Offered(village, answers, taken, refusal)

    def _hold(
        self, conn: sqlite3.Connection, village: str, head: Outer, data: bytes, at_ms: int, answered: bool
    ) -> None:
        row = conn.execute(
            "SELECT state FROM relay_frames WHERE village=? AND direction='up' AND hash=?", (village, head.hash)
        ).fetchone()
        if row is None:
            self._room(conn, village, head.size)
            conn.execute(
                "INSERT INTO relay_frames (village, direction, kind, hash, epoch, first_seq, last_seq, size,"
                " data, created_ms) VALUES (?, 'up', 'batch', ?, ?, ?, ?, ?, ?, ?)",
                (village, head.hash, head.epoch, head.first_seq, head.last_seq, head.size, data, at_ms),
            )
        elif row[0] == "sent" and not answered:
            self._room(conn, village, head.size)
            conn.execute(
                "UPDATE relay_frames SET state='waiting', data=?, size=?, created_ms=?"
                " WHERE village=? AND direction='up' AND hash=?",
                (data, head.size, at_ms, village, head.hash),
            )

    def offer_pull(self, request: bytes, at_ms: int, *, hand_over: bool = True) -> Collected:
        """Take a village's signed pull request (replacing any older one: only the newest is worth
        carrying) and hand over what waits for it, feed pages and acks alike (not when it came on a
        stick). The request is one slot per village, so it counts against the total only: a village
        whose batches fill its quota still asks for its feed."""
        try:
            head = outer(request)
        except RemoteProtocolError as exc:
            raise Refused(f"下载请求无法读取，乡镇未收下 (not a signed request: {exc})", code="malformed") from exc
        self.check_origin(head.origin)
        with self._tx() as conn:
            pages = self._take_down(conn, head.origin, "feed") if hand_over else []
            acks = self._take_down(conn, head.origin, "acks") if hand_over else []
            self._put_slot(conn, head.origin, "pull", request, at_ms)
        return Collected(head.origin, pages, acks)

    def offer_claim(self, claim: bytes, at_ms: int) -> str:
        """Take a village's claim (its offline enrolment, ``V_claim.sjc``) for the hub, as opaque bytes:
        the relay reads only the station it names, and the hub checks the token's HMAC over it. One slot
        per village (the newest replaces any older), counted against the total like a pull request."""
        try:
            village = decode_claim(claim)[0]
        except RemoteProtocolError as exc:
            raise Refused(f"接入确认文件无法读取，乡镇未收下 (not a claim: {exc})", code="malformed") from exc
        self.check_origin(village)
        with self._tx() as conn:
            self._put_slot(conn, village, "claim", claim, at_ms)
        return village

    def _put_slot(self, conn: sqlite3.Connection, village: str, kind: str, data: bytes, at_ms: int) -> None:
        """One slot per village and kind (a pull request, a claim): the newest replaces the older."""
        conn.execute("DELETE FROM relay_frames WHERE village=? AND direction='up' AND kind=?", (village, kind))
        self._room_in_all(conn, len(data))
        conn.execute(
            "INSERT INTO relay_frames (village, direction, kind, hash, size, data, created_ms)"
            " VALUES (?, 'up', ?, ?, ?, ?, ?)",
            (village, kind, hashlib.sha256(data).digest(), len(data), data, at_ms),
        )

    @staticmethod
    def _waiting(conn: sqlite3.Connection, village: str, kind: str) -> bool:
        return bool(
            conn.execute(
                "SELECT 1 FROM relay_frames WHERE village=? AND direction='down' AND kind=? LIMIT 1", (village, kind)
            ).fetchone()
        )

    def _take_down(self, conn: sqlite3.Connection, village: str, kind: str) -> list[bytes]:
        rows = conn.execute(
            "SELECT id, data FROM relay_frames WHERE village=? AND direction='down' AND kind=? ORDER BY id",
            (village, kind),
        ).fetchall()
        conn.executemany("DELETE FROM relay_frames WHERE id=?", [(r[0],) for r in rows])
        return [bytes(r[1]) for r in rows]

    def waiting_down(self, village: str) -> list[tuple[int, str, bytes]]:
        """The hub's answers waiting for a village, oldest first: (id, kind, frame)."""
        rows = self.conn.execute(
            "SELECT id, kind, data FROM relay_frames WHERE village=? AND direction='down' ORDER BY id", (village,)
        ).fetchall()
        return [(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def forget(self, ids: list[int]) -> None:
        with self._tx() as conn:
            conn.executemany("DELETE FROM relay_frames WHERE id=?", [(i,) for i in ids])

    # -- to and from the hub -----------------------------------------------------------------------

    def villages_waiting(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT DISTINCT village FROM relay_frames WHERE direction='up' AND state='waiting' ORDER BY village"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def waiting_batches(self, village: str) -> list[tuple[int, bytes]]:
        """A village's batches for the hub, in chain order (epoch, then seq)."""
        rows = self.conn.execute(
            "SELECT id, data FROM relay_frames WHERE village=? AND direction='up' AND kind='batch'"
            " AND state='waiting' ORDER BY epoch, first_seq, id",
            (village,),
        ).fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def waiting_pull(self, village: str, kind: str = "pull") -> tuple[int, bytes] | None:
        """The village's slot of ``kind`` waiting up: its pull request, or its claim (``kind="claim"``)."""
        row = self.conn.execute(
            "SELECT id, data FROM relay_frames WHERE village=? AND direction='up' AND kind=?", (village, kind)
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def answered(self, village: str, sent: list[int], kind: str, answer: bytes | None, at_ms: int) -> None:
        """The hub answered what was sent: keep its answer for the village; a batch is remembered as
        sent (so a re-offer is not forwarded twice), a pull request is done with."""
        with self._tx() as conn:
            # A forwarded batch keeps only its header facts (to tell a re-offer from a new batch); its
            # bytes are freed, and no longer count against the quotas.
            sent_batch = "UPDATE relay_frames SET state='sent', data=x'', size=0 WHERE id=?"
            done = sent_batch if kind == "acks" else "DELETE FROM relay_frames WHERE id=?"
            conn.executemany(done, [(rid,) for rid in sent])
            if answer is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO relay_frames (village, direction, kind, hash, size, data, created_ms)"
                    " VALUES (?, 'down', ?, ?, ?, ?, ?)",
                    (village, kind, hashlib.sha256(answer).digest(), len(answer), answer, at_ms),
                )

    def expire(self, at_ms: int) -> int:
        """Forget what waited past the expiry (the village still holds its batches; the hub its feed)."""
        with self._tx() as conn:
            # A village's pull request goes with its expired batches: carried alone, it would arrive
            # ahead of batches left before it (node/relay_forward.py keeps them in order).
            conn.execute(
                "DELETE FROM relay_frames WHERE direction='up' AND kind='pull' AND village IN (SELECT village"
                " FROM relay_frames WHERE direction='up' AND kind='batch' AND state='waiting' AND created_ms < ?)",
                (at_ms - EXPIRY_MS,),
            )
            return conn.execute("DELETE FROM relay_frames WHERE created_ms < ?", (at_ms - EXPIRY_MS,)).rowcount

    # -- what the township's staff see -------------------------------------------------------------

    def summary(self, at_ms: int) -> list[dict[str, object]]:
        """Per village: frames waiting up and down, their bytes, and the oldest's age in seconds."""
        rows = self.conn.execute(
            "SELECT village, direction, COUNT(*), COALESCE(SUM(size), 0), MIN(created_ms) FROM relay_frames"
            " WHERE state='waiting' GROUP BY village, direction ORDER BY village"
        ).fetchall()
        out: dict[str, dict[str, object]] = {}
        for village, direction, n, size, oldest in rows:
            entry = out.setdefault(
                str(village), {"village": str(village), "up": 0, "down": 0, "bytes": 0, "oldest_age_s": 0}
            )
            entry[str(direction)] = int(n)
            entry["bytes"] = int(str(entry["bytes"])) + int(size)
            entry["oldest_age_s"] = max(int(str(entry["oldest_age_s"])), max(0, (at_ms - int(oldest)) // 1000))
        return list(out.values())


def keep_keys(folder: Path, bundle: bytes) -> None:
    """Keep the hub's key history for the villages (written whole, by rename)."""
    tmp = Path(folder) / (KEYS_NAME + ".tmp")
    tmp.write_bytes(bundle)
    tmp.replace(Path(folder) / KEYS_NAME)


def kept_keys(folder: Path) -> bytes | None:
    path = Path(folder) / KEYS_NAME
    return path.read_bytes() if path.exists() else None


def summary_of(folder: Path, township: str, at_ms: int) -> list[dict[str, object]]:
    """The relay queue of a township folder ([] where it never relayed)."""
    if not (Path(folder) / DB_NAME).exists():
        return []
    queue = RelayQueue(folder, township)
    try:
        return queue.summary(at_ms)
    finally:
        queue.close()

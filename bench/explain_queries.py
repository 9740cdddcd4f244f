"""EXPLAIN (ANALYZE, BUFFERS) of the statements behind /stats, /timeline and /faces, as the API runs them.

Calls the project's own query functions (db.queries.stats, timeline, faces_page) and
explains each SQL statement they send, with the same bound parameters, on the same
session: no hand-written copies that could drift from the code. The filter values are
taken from the data (its newest face, a batch in the middle, the median face id), so it
works on any database the generator filled.

    python bench/explain_queries.py                   # socialfer_bench_1m: full plans, then a summary
    python bench/explain_queries.py URL --summary     # plan shape and execution time only
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from core.filters import Filters
from db import Database, Face
from db.queries import faces_page, stats, timeline
from db.windows import as_utc

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1/socialfer_bench_1m"
NODE = re.compile(r"^\s*(?:->\s+)?(?P<node>[A-Z][^(]*?)\s+\(cost=")
EXECUTION = re.compile(r"Execution Time: (?P<ms>[0-9.]+) ms")


@dataclass(frozen=True)
class Explained:
    name: str
    statement: str
    plan: list[str]

    @property
    def execution_ms(self) -> float:
        return sum(float(m["ms"]) for line in self.plan if (m := EXECUTION.search(line)))

    @property
    def shape(self) -> str:
        """The plan's access paths (scans) and aggregation nodes, top to bottom."""
        nodes = [m["node"] for line in self.plan if (m := NODE.match(line))]
        kept = [n for n in nodes if "Scan" in n or "Aggregate" in n or n in ("Append", "Sort", "Limit")]
        return " > ".join(kept)


@contextmanager
def captured(database: Database) -> Iterator[list[tuple[str, Any]]]:
    """The (statement, parameters) pairs sent to the database inside the block."""
    sent: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
        if not statement.startswith("EXPLAIN"):
            sent.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(database.engine, "before_cursor_execute", record)


def explain(database: Database, name: str, call: Callable[[Session], Any]) -> list[Explained]:
    """Run `call`, then EXPLAIN (ANALYZE, BUFFERS) each statement it sent, in the same transaction."""
    with database.session() as session, captured(database) as sent:
        call(session)
        statements = list(sent)
        connection = session.connection()
        return [
            Explained(
                name if len(statements) == 1 else f"{name} [{index + 1}/{len(statements)}]",
                statement,
                [row[0] for row in connection.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)],
            )
            for index, (statement, parameters) in enumerate(statements)
        ]


def cases(session: Session) -> dict[str, Callable[[Session], Any]]:
    """The main queries, with filters taken from the data."""
    newest = as_utc(session.scalar(select(func.max(Face.analyzed_at))))
    if newest is None:
        raise SystemExit("no faces: fill the database with bench/generate_faces.py first")
    count = session.scalar(select(func.count()).select_from(Face)) or 0
    middle = session.scalar(select(Face.id).order_by(Face.id).offset(count // 2).limit(1))
    batch = session.scalar(select(Face.batch_id).where(Face.id == middle))
    week = newest - timedelta(days=7)
    since, until = newest - timedelta(days=30, minutes=-17), newest - timedelta(days=16, minutes=-41)
    window = Filters(since=since, until=until)
    return {
        "stats": lambda s: stats(s),
        "stats platform=instagram": lambda s: stats(s, Filters(platform="instagram")),
        f"stats batch_id={batch}": lambda s: stats(s, Filters(batch_id=batch)),
        "stats since=7 days back": lambda s: stats(s, Filters(since=week)),
        "stats since/until (2 weeks, 30 days back)": lambda s: stats(s, window),
        "timeline": lambda s: timeline(s),
        "faces first page": lambda s: faces_page(s, limit=50),
        f"faces page cursor={middle}": lambda s: faces_page(s, limit=50, cursor=middle),
        f"faces emotion=disgust cursor={middle}": lambda s: faces_page(s, limit=50, emotion="disgust", cursor=middle),
        "faces since/until (2 weeks, 30 days back)": lambda s: faces_page(
            s, Filters(since=since, until=until), limit=50
        ),
        "faces until 60 days back, platform=facebook": lambda s: faces_page(
            s, Filters(platform="facebook", until=newest - timedelta(days=60)), limit=50
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", nargs="?", default=DEFAULT_URL)
    parser.add_argument("--summary", action="store_true", help="only the table of plan shapes and times")
    args = parser.parse_args()

    database = Database(args.url)
    if database.engine.dialect.name != "postgresql":
        raise SystemExit("Postgres only: EXPLAIN (ANALYZE, BUFFERS) is its syntax")
    with database.session() as session:
        todo = cases(session)
    results = [item for name, call in todo.items() for item in explain(database, name, call)]
    if not args.summary:
        for item in results:
            print(f"=== {item.name}\n{item.statement}\n")
            print("\n".join(item.plan), end="\n\n")
    width = max(len(item.name) for item in results)
    print(f"{'query':<{width}}  {'execution':>10}  plan")
    for item in results:
        print(f"{item.name:<{width}}  {item.execution_ms:>7.2f} ms  {item.shape}")
    database.dispose()


if __name__ == "__main__":
    main()

"""db.queries on the real Postgres: grouped counting in few statements, keyset paging edges."""

from __future__ import annotations

from db import DONE, FAILED, PROCESSING, QUEUED, Database
from db.queries import batch_counts, faces_page, stats
from tests.factories import add_batch, add_image, counting_statements, seed_stats


def test_batch_counts_groups_in_one_statement(pg_database: Database) -> None:
    with pg_database.session() as session:
        busy, empty = add_batch(session, total=6), add_batch(session, total=0)
        for status, emotions in [
            (QUEUED, ()),
            (QUEUED, ()),
            (PROCESSING, ()),
            (DONE, ("happy", "sad")),
            (DONE, ()),
            (FAILED, ()),
        ]:
            add_image(session, busy, status=status, emotions=emotions)
        busy_id, empty_id = busy.id, empty.id
    with pg_database.session() as session, counting_statements(pg_database) as statements:
        counts = batch_counts(session, [busy_id, empty_id, 999])
    assert len(statements) == 1
    assert "GROUP BY" in statements[0]
    assert counts == {
        busy_id: {"queued": 2, "processing": 1, "done": 2, "failed": 1, "faces": 2},
        empty_id: {"queued": 0, "processing": 0, "done": 0, "failed": 0, "faces": 0},
        999: {"queued": 0, "processing": 0, "done": 0, "failed": 0, "faces": 0},
    }


def test_batch_counts_of_no_batches_runs_no_sql(pg_database: Database) -> None:
    with pg_database.session() as session, counting_statements(pg_database) as statements:
        assert batch_counts(session, []) == {}
    assert statements == []


def test_stats_is_two_grouped_statements(pg_database: Database) -> None:
    with pg_database.session() as session:
        seed_stats(session)
    with pg_database.session() as session, counting_statements(pg_database) as statements:
        result = stats(session)
    assert len(statements) == 2
    assert all("GROUP BY" in statement for statement in statements)
    assert (result["images"], result["images_with_faces"], result["faces"]) == (4, 3, 6)
    assert list(result["by_platform"]) == ["facebook", "instagram", "twitter"]


def test_faces_page_walks_every_face_once(pg_database: Database) -> None:
    with pg_database.session() as session:
        data = seed_stats(session)
    seen: list[int] = []
    cursor: int | None = None
    pages = 0
    with pg_database.session() as session:
        while True:
            faces, cursor = faces_page(session, limit=4, cursor=cursor)
            seen += [face.id for face in faces]
            pages += 1
            if cursor is None:
                break
    assert seen == sorted(data.face_ids, reverse=True)
    assert pages == 2


def test_faces_page_full_last_page_has_no_cursor(pg_database: Database) -> None:
    with pg_database.session() as session:
        data = seed_stats(session)
        faces, cursor = faces_page(session, limit=len(data.face_ids))
    assert [face.id for face in faces] == sorted(data.face_ids, reverse=True)
    assert cursor is None

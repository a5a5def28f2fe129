from sqlalchemy.orm import Session

from app.db import engine
from app.models import Tag


def test_a_tag_gets_its_uuid_from_the_database() -> None:
    with Session(engine) as session:
        tag = Tag(name="fresh")
        session.add(tag)
        session.flush()
        assert tag.id is not None and tag.id.version == 4
        session.rollback()

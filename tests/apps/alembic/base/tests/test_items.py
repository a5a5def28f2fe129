from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import engine
from app.models import Item


def test_the_dev_items_are_there_and_a_new_one_gets_an_id() -> None:
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Item)) >= 3
        item = Item(title="new")
        session.add(item)
        session.flush()
        assert item.id is not None
        session.rollback()

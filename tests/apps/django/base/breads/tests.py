from django.test import TestCase

from breads.models import Bread


class BreadTests(TestCase):
    def test_tags_are_an_array_and_names_ignore_case(self) -> None:
        Bread.objects.create(name="Rye", tags=["dark", "sour"])
        self.assertEqual(list(Bread.objects.filter(tags__contains=["sour"]).values_list("name", flat=True)), ["Rye"])
        self.assertTrue(Bread.objects.filter(name="RYE").exists())

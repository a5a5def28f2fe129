import django.contrib.postgres.fields
from django.contrib.postgres.operations import CITextExtension
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []

    operations = [
        CITextExtension(),
        migrations.CreateModel(
            name="Bread",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.TextField()),
                (
                    "tags",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=30), default=list, size=None
                    ),
                ),
            ],
        ),
        migrations.RunSQL("ALTER TABLE breads_bread ALTER COLUMN name TYPE citext", migrations.RunSQL.noop),
    ]

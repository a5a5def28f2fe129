import django.contrib.postgres.fields.hstore
import django.db.models.deletion
from django.contrib.postgres.operations import HStoreExtension
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("breads", "0001_initial")]

    operations = [
        HStoreExtension(),
        migrations.CreateModel(
            name="Review",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("stars", models.PositiveSmallIntegerField()),
                ("details", django.contrib.postgres.fields.hstore.HStoreField(default=dict)),
                ("bread", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="breads.bread")),
            ],
        ),
    ]

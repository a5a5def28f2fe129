from django.contrib.postgres.fields import ArrayField
from django.db import models


class Bread(models.Model):
    name = models.TextField()  # citext in the database (migration 0001): names match whatever their case
    tags = ArrayField(models.CharField(max_length=30), default=list)

from django.contrib.postgres.fields import ArrayField, HStoreField
from django.db import models


class Bread(models.Model):
    name = models.TextField()  # citext in the database (migration 0001): names match whatever their case
    tags = ArrayField(models.CharField(max_length=30), default=list)


class Review(models.Model):
    bread = models.ForeignKey(Bread, on_delete=models.CASCADE)
    stars = models.PositiveSmallIntegerField()
    details = HStoreField(default=dict)

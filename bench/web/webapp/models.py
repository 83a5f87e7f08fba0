from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=40)
    price = models.IntegerField()

    class Meta:
        app_label = "webapp"
        db_table = "webapp_item"

from django.db import models


class Note(models.Model):
    title = models.CharField(max_length=100)
    words = models.PositiveIntegerField(default=0)

    class Meta:
        permissions = [
            ("view_report", "Can open the notes report"),
            ("export_note", "Can export notes"),
        ]

    def __str__(self) -> str:
        return self.title

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Note",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("title", models.CharField(max_length=100)),
                ("words", models.PositiveIntegerField(default=0)),
            ],
            options={
                "permissions": [("view_report", "Can open the notes report"), ("export_note", "Can export notes")],
            },
        ),
    ]

from django.db import migrations, models

import project.core.uploads


class Migration(migrations.Migration):
    dependencies = [  # noqa: RUF012
        ("core", "0002_site_editor"),
    ]

    operations = [  # noqa: RUF012
        migrations.AddField(
            model_name="announcement",
            name="image",
            field=models.ImageField(
                blank=True,
                help_text="Optional: a PNG, JPEG, GIF or WebP image, shown with the announcement.",
                max_length=200,
                upload_to=project.core.uploads.announcement_image_path,
                validators=[project.core.uploads.validate_image],
            ),
        ),
        migrations.AddField(
            model_name="announcement",
            name="image_alt",
            field=models.CharField(
                blank=True,
                help_text="What the image shows, for those who cannot see it.",
                max_length=200,
                verbose_name="image description",
            ),
        ),
    ]

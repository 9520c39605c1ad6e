from settings.ember import *  # noqa: F403

ROOT_URLCONF = "tests.django.poolsites.urls_ember"

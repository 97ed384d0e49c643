from django.apps import AppConfig


class SecondAppConfig(AppConfig):
    name = "tests.secondapp"
    label = "secondapp"

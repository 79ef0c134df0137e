from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        from catalog import payloads

        payloads.connect_signals()  # the cached pages of products and users deleted by the ORM

import importlib
import pkgutil

from django.apps import AppConfig

from config.env import BadEnvironment


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "PerfShop core"

    def ready(self) -> None:
        from shop import techniques, toggles

        # Each technique registers its toggle when its module is imported.
        for module in pkgutil.iter_modules(techniques.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"shop.techniques.{module.name}")
        try:
            toggles.environment_defaults()
        except (toggles.UnknownToggle, ValueError) as exc:
            raise BadEnvironment(f"PERF_TOGGLES: {exc}") from exc

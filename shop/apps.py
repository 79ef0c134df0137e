import importlib
import pkgutil

from django.apps import AppConfig

from config.env import BadEnvironment


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "PerfShop core"

    def ready(self) -> None:
        from shop import techniques, toggles
        from shop.perf_headers import NOT_PER_REQUEST, SET_AT_START, refusal

        # Each technique registers its toggle when its module is imported.
        for module in pkgutil.iter_modules(techniques.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"shop.techniques.{module.name}")
        from shop.techniques import local_cache

        local_cache.connect_signals()  # its L1 and Redis entries evicted on every ORM write
        try:
            flags = toggles.environment_defaults()
        except (toggles.UnknownToggle, ValueError) as exc:
            raise BadEnvironment(f"PERF_TOGGLES: {exc}") from exc
        # Refused as the header refuses it: accepting it would claim a change that never runs.
        # PERF_TOGGLES is how a toggle SET_AT_START is set (the settings read it).
        for name in NOT_PER_REQUEST:
            if name in flags and name not in SET_AT_START:
                raise BadEnvironment(f"PERF_TOGGLES: {refusal(name, where='in the environment')}")

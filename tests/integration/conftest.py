from support.server import channel, registry, registry_target

__all__ = ["channel", "registry", "registry_target"]

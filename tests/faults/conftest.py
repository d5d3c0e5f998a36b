from support.server import admin_token, channel, registry, registry_endpoints, registry_target

__all__ = ["admin_token", "channel", "registry", "registry_endpoints", "registry_target"]

"""Platform adapters (one per platform, behind integrations.base.PlatformAdapter)."""

"""Helpers shared by the unit and integration tiers: one fake clock, one harness, test builders."""

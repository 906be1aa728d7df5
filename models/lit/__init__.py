"""LightningModules (one per task, thin) and the callbacks they share."""

"""Target descriptions (YAML) shipped with edgeavs; loaded by edgeavs.targets."""

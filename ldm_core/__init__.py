"""Brain LDM study core package."""

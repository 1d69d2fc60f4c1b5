"""cargoctl: the one command that runs every Cargo process and chore."""

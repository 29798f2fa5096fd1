"""Hot water: the tank sensor readers, the pure guarantee planner and the process that
turns its decisions into self-expiring commands to the worker."""

"""The hot-water process: boost and pause with their timeouts, the guarantee planner
(``vzdivert.guarantee``) and the tank sensor, reaching the output only through
self-expiring commands to the worker."""

"""``make bench``: orchestration overhead, runner scaling and the physical floor."""

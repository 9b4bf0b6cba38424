"""The training loop shared by every model: accumulation, allreduce seam, loss scaling,
clipping, LAMB/AdamW, schedules, checkpoints and resume, progress and metrics."""

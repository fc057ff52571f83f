"""The trainer: the loop and its TrainState, batches, validation, checkpoints, schedules, curricula, tripwires, weight control and torchrun."""

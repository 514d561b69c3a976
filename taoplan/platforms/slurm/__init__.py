"""Platform slurm: one batch job per service, submitted with sbatch over one multiplexed SSH
connection to a login node, reached through an ``ssh -L`` tunnel whose PID is recorded."""

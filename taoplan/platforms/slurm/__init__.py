"""Platform slurm: one batch job per service, submitted with sbatch over one multiplexed SSH
connection to a login node, reached through an ``ssh -L`` tunnel whose PID is recorded.

platform (the Platform class) on remote (commands on the login node), script (the sbatch script and
its secrets sidecar), jobs (reading squeue/sacct), settings (the config as the cluster sees it), doctor.
"""

#!/bin/bash
# taoplan: service reason (tao-dataservices), job 11111111-2222-4333-8444-555555555555, spec abc123.
# `taoplan apply` submits exactly this text: `cd REMOTE_DIR && sbatch --parsable`, script on stdin.
# Listens on port 18082 of the node (--port 18082), so services can share a node.
# Secrets appear by NAME only: their values arrive in the mode-0600 sidecar env/11111111-2222-4333-8444-555555555555.env,
# which this script sources and removes before anything else runs.
#SBATCH --job-name=11111111-2222-4333-8444-555555555555
#SBATCH --comment=taoplan.lineage=lin-1;taoplan.node-port=18082;taoplan.project=demo;taoplan.service=reason;taoplan.spec-hash=abc123
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:2
#SBATCH --cpus-per-task=16
#SBATCH --time=04:00:00
#SBATCH --output=logs/%x-%j.out
#SBATCH --open-mode=append
#SBATCH --requeue
#SBATCH --partition=gpu
#SBATCH --account=tao
set -euo pipefail

secrets_file="$SLURM_SUBMIT_DIR/env/11111111-2222-4333-8444-555555555555.env"
if [ ! -f "$secrets_file" ]; then
  echo "taoplan: the secrets sidecar $secrets_file is gone (a requeued job?); run 'taoplan apply' again" >&2
  exit 1
fi
if [ -f "$secrets_file" ]; then
  set -a
  . "$secrets_file"
  set +a
  rm -f -- "$secrets_file"
fi

export CLOUD_BASED=False
export TAO_API_JOB_ID=11111111-2222-4333-8444-555555555555
export TAO_EXECUTION_BACKEND=slurm
export TAO_LOG_LEVEL=INFO

# Docker on the node, sharing its network like Pyxis does. scancel signals this script, not the
# container, so the container is removed on the way out.
container=11111111-2222-4333-8444-555555555555
trap 'docker rm -f "$container" >/dev/null 2>&1 || true' EXIT
trap 'exit 143' TERM INT
gpus=()
if [ -n "${CUDA_VISIBLE_DEVICES:-}" ] && docker info 2>/dev/null | grep -qi '^ *runtimes:.*nvidia'; then
  gpus=(--gpus "\"device=$CUDA_VISIBLE_DEVICES\"")
fi
docker run --rm --name "$container" --network host --init ${gpus[@]+"${gpus[@]}"} \
  --env CLOUD_BASED \
  --env TAO_API_JOB_ID \
  --env TAO_EXECUTION_BACKEND \
  --env TAO_LOG_LEVEL \
  --env HF_TOKEN \
  --env WANDB_API_KEY \
  nvcr.io/nvidia/tao/x:1 \
  /bin/bash -c 'umask 0 && python -m nvidia_tao_core.microservices.handlers.huggingface_inference_microservice_server --port 18082 --job '"'"'{"job_id":"11111111-2222-4333-8444-555555555555","specs":{"model_path":"/models/it'"'"'"'"'"'"'"'"'s here"},"neural_network_name":"tao-dataservices"}'"'"' --docker_env_vars '"'"'{"TAO_EXECUTION_BACKEND":"slurm","TAO_API_JOB_ID":"11111111-2222-4333-8444-555555555555","CLOUD_BASED":"False"}'"'"'' &
wait $!

#!/bin/sh
# taoplan: service reason (cosmos-rl), job 11111111-2222-4333-8444-555555555555, spec abc123.
# Apply executes exactly this command line (through the Docker API). Secrets appear by NAME only:
# `-e NAME` takes the value from the environment of whoever runs it.
exec docker run --detach \
  --name 11111111-2222-4333-8444-555555555555 \
  --label tao-job=11111111-2222-4333-8444-555555555555 \
  --label taoplan.job-id=11111111-2222-4333-8444-555555555555 \
  --label taoplan.lineage=lin-1 \
  --label taoplan.project=demo \
  --label taoplan.service=reason \
  --label taoplan.spec-hash=abc123 \
  --network tao_default \
  --publish 127.0.0.1:8081:8080 \
  --init \
  --tmpfs /dev/shm:rw,size=8g \
  --gpus 2 \
  --env CLOUD_BASED=False \
  --env TAO_API_JOB_ID=11111111-2222-4333-8444-555555555555 \
  --env TAO_EXECUTION_BACKEND=local-docker \
  --env TAO_LOG_LEVEL=INFO \
  --env HF_TOKEN \
  --env WANDB_API_KEY \
  nvcr.io/nvidia/tao/x:1 \
  /bin/bash -c 'umask 0 && cosmos-rl-inference-microservice --job '"'"'{"job_id":"11111111-2222-4333-8444-555555555555","specs":{"model_path":"/models/it'"'"'"'"'"'"'"'"'s here"},"neural_network_name":"cosmos-rl"}'"'"' --docker_env_vars '"'"'{"TAO_EXECUTION_BACKEND":"local-docker","TAO_API_JOB_ID":"11111111-2222-4333-8444-555555555555","CLOUD_BASED":"False"}'"'"''

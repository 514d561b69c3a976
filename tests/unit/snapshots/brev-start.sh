#!/bin/sh
# taoplan: brev instance box: service reason (cosmos-rl), job 11111111-2222-4333-8444-555555555555.
# Apply runs this on the VM over ssh as `sh -s`, with this text on stdin after one `export NAME=...`
# line per secret (values never on a command line or in a file). Safe to run twice: a container
# named by the job_id is never started a second time.
set -u
if docker container inspect 11111111-2222-4333-8444-555555555555 >/dev/null 2>&1; then
  echo "taoplan: container 11111111-2222-4333-8444-555555555555 already exists"
  exit 0
fi
# One network creator at a time on this VM: services started side by side would otherwise each create
# the network, and Docker would hold two networks of one name (`docker run --network` then fails).
(
  flock -w 60 9 || exit 3
  docker network inspect tao_default >/dev/null 2>&1 \
    || docker network create --label taoplan.project=demo tao_default >/dev/null
) 9>"/tmp/taoplan-network-$(id -u).lock" || exit 3
docker image inspect nvcr.io/nvidia/tao/x:1 >/dev/null 2>&1 || docker pull --quiet nvcr.io/nvidia/tao/x:1 >&2 || exit 4
# run.sh, as rendered for local-docker (the one docker run line of both platforms):
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

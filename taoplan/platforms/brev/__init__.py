"""Platform brev: one container per service on an NVIDIA Brev GPU VM. The brev CLI finds, creates,
starts and deletes the instance (cli.py, instance.py); the local-docker container model runs with the
docker CLI on the VM over ssh through brev's ssh config (vm.py); doctor.py checks it all."""

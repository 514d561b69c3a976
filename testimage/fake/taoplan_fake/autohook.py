"""Loaded at interpreter start by taoplan-fake.pth (test image only).

Installs a meta-path finder that, when (and only when) the real
base_inference_microservice_server module is imported, lets it execute normally and then
applies taoplan_fake.hooks.patch_base_class to its class. Costs nothing for other programs.
"""

import importlib.machinery
import sys

_TARGET = "nvidia_tao_core.microservices.handlers.base_inference_microservice_server"


class _PatchAfterImport:
    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        original_exec = spec.loader.exec_module

        def exec_module(module):
            original_exec(module)
            try:
                from taoplan_fake import hooks

                hooks.patch_base_class(module.BaseInferenceMicroserviceServer)
            except Exception as exc:  # the real server must run even if the test hook breaks
                print(f"taoplan_fake: could not patch {_TARGET}: {exc}", file=sys.stderr)

        spec.loader.exec_module = exec_module
        return spec

    def invalidate_caches(self):
        pass


if not any(isinstance(f, _PatchAfterImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _PatchAfterImport())

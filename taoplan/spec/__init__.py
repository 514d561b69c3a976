"""The services file and what it means: the YAML source with positions, the pydantic models,
the reference data (references/*.yaml), image resolution, the TAO payload and inner commands,
the desired services with their spec hashes, the deployments built from them, and the JSON Schema.

Pure: nothing here touches the network, a platform or recorded state.
Imports: ``taoplan.common``, ``taoplan.errors``, ``taoplan.labels``.
"""

"""Small shared mechanics with no knowledge of services: atomic files, hashing, processes, paths,
HTTP client settings, GC pauses and fault injection.

Imports: the standard library and ``taoplan.errors`` only. Every layer may import this one.
"""

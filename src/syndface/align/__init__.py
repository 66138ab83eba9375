"""Align stage: FFHQ-style face alignment in shards, the packed training cache, identity leakage.

Public surface for other stages: `syndface.align.cache.load_cache(dir)` and
`syndface.align.descriptors.face_descriptors(images)`.
"""

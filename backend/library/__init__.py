"""Describe and search motions with the retrieval model the product already loads (Part-TMR).

- :mod:`.reading`: any motion the product reads (motion ``.npz``, joints ``.npy``, BVH on the SMPL/HumanML3D
  skeleton) -> joints (T, 22, 3) at 20 fps and their 263-d features.
- :mod:`.embed`: features -> Part-TMR motion embeddings (normalised with the model's mean/std, padded as the
  model's database was built), and the fingerprint of the model that made them.
- :mod:`.describe`: a motion -> the closest captions and motions of the model's retrieval database.
- :mod:`.index`: a folder of motions -> a FAISS index of overlapping windows (incremental, atomic).
- :mod:`.search`: text or example motion -> the best windows of an index.

Details: backend/library/README.md.
"""

"""ReMoMask generator backend: text -> retrieval -> masked motion generation -> joints (-> SMPL fit)."""

__version__ = "0.1.0"

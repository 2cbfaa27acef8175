"""Accuracy evaluation: LFW verification, open/closed-set identification, threshold calibration,
demographic differentials and model cards.

``metrics`` is pure numpy; ``embedset`` runs the product pipeline over a dataset (process pool,
cache file); ``verify``, ``identify``, ``calibrate`` and ``groups`` turn embeddings into figures;
``card`` writes the model card. The command line is ``faceledger/cli/evaluate.py``.
"""

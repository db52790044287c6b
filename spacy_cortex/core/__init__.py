"""The model core: loading and running the CORTEX model (`model`), text windows and
batches (`encoding`), span and label decoding (`decoding`), device and precision
(`device`), the training loss (`loss`) and named checkpoints (`checkpoints`).

Imports torch, transformers, tokenizers, safetensors and numpy, never spaCy or thinc: the
API, the trainer, the evaluation of model-level tasks and the GPU scripts run on it where
spaCy is not installed. Import the modules themselves; this file loads nothing.
"""

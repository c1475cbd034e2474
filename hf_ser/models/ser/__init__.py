"""The Hub "remote code": configuration, feature extractor, model, pipeline and audio decoding.

These files import only numpy, torch, transformers (soundfile and soxr for decoding) and each other;
``save_pretrained`` copies them into every model folder, so a checkpoint loads, and its pipeline decodes
files, with ``trust_remote_code=True`` where hf-ser is not installed. This package file imports nothing:
``hf_ser.models.registry`` imports the classes and registers them with the Auto* classes.
"""

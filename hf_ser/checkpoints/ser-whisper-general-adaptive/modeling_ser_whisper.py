# hf-ser code pointer: this folder ships inside hf-ser and holds no copy of its code.
from hf_ser.models.registry import SERWhisperForAudioClassification  # noqa: F401

